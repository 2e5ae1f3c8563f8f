//! Every chapter's demos, run for real and recorded as the transcripts the book
//! shows (`cargo xtask codegen` copies these snapshots into `book/src/generated`).
//! A change in what minibox prints shows up here first.

use harness::{CHAPTERS, transcript};

#[test]
fn every_chapter_demo_transcript() {
    for chapter in CHAPTERS {
        if chapter.needs_root && !harness::require_root(&format!("{} demos", chapter.package)) {
            continue;
        }
        let session = transcript::DemoSession::start(chapter);
        for demo in chapter.demos {
            let recorded = transcript::record(chapter, demo, &session);
            let name = chapter.snapshot_name(demo);
            assert_eq!(
                recorded.status, demo.status,
                "{name}:\n{}",
                recorded.transcript
            );
            harness::filters::settings().bind(|| {
                insta::assert_snapshot!(name, recorded.transcript);
            });
        }
    }
}
