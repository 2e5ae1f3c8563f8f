//! Every chapter's help text, as snapshots. The help is the first thing a learner
//! reads, and the diff between two chapters' snapshots shows what each one added.

use harness::{CHAPTERS, transcript};

#[test]
fn every_chapter_help_text() {
    for chapter in CHAPTERS {
        let bin = transcript::chapter_bin(chapter);
        for (suffix, args) in [("help", &["--help"][..]), ("run-help", &["run", "--help"])] {
            let (output, status) = transcript::run_merged(&bin, args);
            assert_eq!(status, 0, "{} {args:?} failed:\n{output}", chapter.package);
            harness::filters::settings().bind(|| {
                insta::assert_snapshot!(format!("{}-{suffix}", chapter.package), output);
            });
        }
    }
}
