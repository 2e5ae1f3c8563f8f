//! Every chapter's help text, as snapshots. The help is the first thing a learner
//! reads, and the diff between two chapters' snapshots shows what each one added.

use harness::{CHAPTERS, transcript};

#[test]
fn every_chapter_help_text() {
    for chapter in CHAPTERS {
        if let Some(second) = chapter.second_binary() {
            let bin = transcript::chapter_bin_named(chapter, second);
            let (output, status) = transcript::run_merged(&bin, &["--help"]);
            assert_eq!(status, 0, "{second} --help failed:\n{output}");
            harness::filters::settings().bind(|| {
                insta::assert_snapshot!(format!("{}-second-help", chapter.package), output);
            });
        }
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
