//! The book's figures, at the size readers see them.
//!
//! mdBook shows a page in a column at most [`COLUMN`] px wide, and an SVG figure
//! is scaled down to fit it: a label of font size 12 in a figure whose `viewBox`
//! is 1200 units wide is 12 × 750 / 1200 = 7.5 px on screen. Every label must be
//! at least [`MIN_LABEL_PX`] px there.
//!
//! - [`label_problems`] computes each label's rendered size from the SVG alone
//!   (its `viewBox`, its `width`, and the font sizes of its style sheet, classes,
//!   attributes and inline styles). `cargo xtask check-book` runs it on every
//!   figure, so a figure that shrinks its labels fails without a browser.
//! - `cargo xtask figures` renders every figure at the book's width in headless
//!   Chromium (Debian's `chromium`, installed with apt-get when missing and we
//!   are root), measures every label's computed font size there as well, fails
//!   below [`MIN_LABEL_PX`], and writes a screenshot of each figure to
//!   `target/figures/NAME.png`. Look at them: a check cannot see overlaps.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use regex::Regex;

use crate::check_book::files_under;
use crate::shell;

/// The width of mdBook's content column, in CSS pixels (`--content-max-width`).
pub const COLUMN: f64 = 750.0;
/// The smallest label size a reader should have to read, in CSS pixels.
pub const MIN_LABEL_PX: f64 = 14.0;
/// The default font size of SVG text when nothing sets one.
const DEFAULT_FONT_PX: f64 = 16.0;

/// How an SVG is scaled into the book's column: its `viewBox` width, and the
/// width it is drawn at (its `width` attribute, at most the column).
fn scale(svg: &str) -> Result<(f64, f64), String> {
    let root = Regex::new(r"<svg\b[^>]*>")
        .expect("valid regex")
        .find(svg)
        .ok_or("no <svg> element")?
        .as_str();
    let view_box = attribute(root, "viewBox").ok_or("the <svg> element has no viewBox")?;
    let numbers: Vec<f64> = view_box
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    let [_, _, box_width, _] = numbers[..] else {
        return Err(format!("viewBox {view_box:?} is not four numbers"));
    };
    let width = attribute(root, "width")
        .ok_or("the <svg> element has no width (the book would guess one)")?
        .trim_end_matches("px")
        .parse::<f64>()
        .map_err(|_| "the <svg> element's width is not a number of pixels".to_string())?;
    Ok((box_width, width.min(COLUMN)))
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let re = Regex::new(&format!(r#"\s{name}\s*=\s*"([^"]*)""#)).expect("valid regex");
    re.captures(tag).map(|c| c.get(1).expect("group").as_str())
}

fn font_size_in(declarations: &str) -> Option<f64> {
    let re = Regex::new(r"font-size\s*:\s*([0-9.]+)(px)?").expect("valid regex");
    re.captures(declarations).and_then(|c| c[1].parse().ok())
}

/// The style sheet's font sizes: by element name (`text`, `tspan`) and by class.
#[derive(Default)]
struct Sheet {
    elements: BTreeMap<String, f64>,
    classes: BTreeMap<String, (usize, f64)>,
}

fn sheet(svg: &str) -> Sheet {
    let mut sheet = Sheet::default();
    let style = Regex::new(r"(?s)<style[^>]*>(.*?)</style>").expect("valid regex");
    let rule = Regex::new(r"(?s)([^{}]+)\{([^}]*)\}").expect("valid regex");
    for css in style.captures_iter(svg) {
        for (order, r) in rule.captures_iter(&css[1]).enumerate() {
            let Some(size) = font_size_in(&r[2]) else {
                continue;
            };
            for selector in r[1].split(',').map(str::trim) {
                if let Some(class) = selector.strip_prefix('.') {
                    sheet.classes.insert(class.to_string(), (order, size));
                } else if selector.chars().all(|c| c.is_ascii_alphabetic()) {
                    sheet.elements.insert(selector.to_string(), size);
                }
            }
        }
    }
    sheet
}

/// Every label of `svg` that renders below [`MIN_LABEL_PX`] in the book's
/// column, as one line per figure (the smallest, and how many are too small).
pub fn label_problems(svg: &str) -> Vec<String> {
    let (box_width, drawn) = match scale(svg) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let factor = drawn / box_width;
    let sheet = sheet(svg);
    let body =
        Regex::new(r"(?s)<style[^>]*>.*?</style>|<title[^>]*>.*?</title>|<desc[^>]*>.*?</desc>")
            .expect("valid regex")
            .replace_all(svg, "");
    let token = Regex::new(r"(?s)<(/?)([a-zA-Z]+)([^>]*?)(/?)>|([^<]+)").expect("valid regex");
    // The font size in effect, per open element.
    let mut stack: Vec<f64> = vec![DEFAULT_FONT_PX];
    let mut labels: Vec<(f64, String)> = Vec::new();
    let mut in_text = 0;
    for t in token.captures_iter(&body) {
        if let Some(content) = t.get(5) {
            let content = content.as_str().trim();
            if in_text > 0 && !content.is_empty() {
                let px = stack.last().copied().unwrap_or(DEFAULT_FONT_PX) * factor;
                labels.push((px, content.to_string()));
            }
            continue;
        }
        let (closing, name, attrs, self_closing) = (&t[1] == "/", &t[2], &t[3], &t[4] == "/");
        if closing {
            stack.pop();
            if name == "text" {
                in_text -= 1;
            }
            continue;
        }
        let inherited = stack.last().copied().unwrap_or(DEFAULT_FONT_PX);
        // CSS precedence: inline style, then class rules, then element rules,
        // then the presentation attribute, then inheritance.
        let from_classes = attribute(attrs, "class").and_then(|classes| {
            classes
                .split_whitespace()
                .filter_map(|c| sheet.classes.get(c))
                .max_by_key(|(order, _)| *order)
                .map(|(_, size)| *size)
        });
        let size = attribute(attrs, "style")
            .and_then(font_size_in)
            .or(from_classes)
            .or_else(|| sheet.elements.get(name).copied())
            .or_else(|| attribute(attrs, "font-size").and_then(|s| s.parse().ok()))
            .unwrap_or(inherited);
        if !self_closing {
            stack.push(size);
            if name == "text" {
                in_text += 1;
            }
        }
    }
    let small: Vec<&(f64, String)> = labels
        .iter()
        .filter(|(px, _)| *px + 0.01 < MIN_LABEL_PX)
        .collect();
    let Some((px, label)) = small
        .iter()
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(px, l)| (*px, l))
    else {
        return Vec::new();
    };
    vec![format!(
        "{} of {} labels render below {MIN_LABEL_PX} px in the book's {COLUMN} px column; the smallest, {label:?}, at {px:.1} px (viewBox {box_width} wide, drawn {drawn} px wide): draw it for a {COLUMN}-unit viewBox with font sizes of at least {MIN_LABEL_PX}",
        small.len(),
        labels.len(),
    )]
}

/// `cargo xtask figures`: every figure at the book's width in headless
/// Chromium; screenshots in `target/figures/`; fails on a label below 14 px.
pub fn render(root: &Path) -> Result<()> {
    let chromium = ensure_chromium()?;
    let out = root.join("target/figures");
    fs::create_dir_all(&out)?;
    let profile = tempfile::tempdir().context("a temporary Chromium profile")?;
    let mut failures = Vec::new();
    let measured_re = Regex::new(r#"(?s)<pre id="measured"[^>]*>(.*?)</pre>"#)?;
    let figures: Vec<PathBuf> = files_under(&root.join("book/src/images"))?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    for figure in &figures {
        let name = figure.file_stem().expect("a file name").to_string_lossy();
        let svg = fs::read_to_string(figure)?;
        let (box_width, drawn) = scale(&svg).map_err(anyhow::Error::msg)?;
        let height = svg_height(&svg).unwrap_or(box_width) * drawn / box_width;
        // The figure as the book shows it: an image at most a column wide.
        let page = out.join(format!("{name}.html"));
        fs::write(
            &page,
            format!(
                "<!doctype html><html><body style=\"margin:0;background:#fff\">\
                 <div style=\"max-width:{COLUMN}px\">{}</div>\
                 <pre id=\"measured\" style=\"display:none\"></pre><script>{MEASURE}</script></body></html>",
                responsive(&svg)
            ),
        )?;
        let png = out.join(format!("{name}.png"));
        let mut screenshot = chromium_command(&chromium, profile.path());
        screenshot
            .arg(format!("--screenshot={}", png.display()))
            // Headless Chromium paints a viewport somewhat shorter than the
            // window it is given: leave room, the rest of the page is white.
            .arg(format!(
                "--window-size={},{}",
                COLUMN as u32,
                height.ceil() as u32 + 200
            ))
            .arg(file_url(&page));
        run_quietly(&mut screenshot, &name)?;
        let mut dump = chromium_command(&chromium, profile.path());
        dump.arg("--dump-dom").arg(file_url(&page));
        let dom = run_quietly(&mut dump, &name)?;
        let measured = measured_re
            .captures(&dom)
            .map(|c| c[1].to_string())
            .with_context(|| format!("{name}: Chromium did not run the measurement"))?;
        let (min, count) = measured
            .split_once(' ')
            .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.trim().parse::<u32>().ok()?)))
            .with_context(|| format!("{name}: unexpected measurement {measured:?}"))?;
        eprintln!(
            "xtask: {name}: {count} labels, the smallest {min:.1} px at {drawn} px wide → {}",
            png.strip_prefix(root).unwrap_or(&png).display()
        );
        if min + 0.01 < MIN_LABEL_PX {
            failures.push(format!(
                "{name}: a label renders at {min:.1} px in Chromium"
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} figure(s) have labels below {MIN_LABEL_PX} px at the book's width:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    eprintln!(
        "xtask: {} figures rendered in {}; look at them",
        figures.len(),
        out.display()
    );
    Ok(())
}

/// In the browser: each label's computed font size times the figure's scale
/// (drawn width / viewBox width); writes "MIN COUNT" into `#measured`.
const MEASURE: &str = r#"
const svg = document.querySelector('svg');
const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
let min = Infinity, count = 0;
for (const el of svg.querySelectorAll('text, tspan')) {
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== '');
  if (!own) continue;
  count++;
  min = Math.min(min, parseFloat(getComputedStyle(el).fontSize) * scale);
}
document.getElementById('measured').textContent = min + ' ' + count;
"#;

/// The SVG drawn as the book draws an image: at its width, but never wider
/// than the column.
fn responsive(svg: &str) -> String {
    svg.replacen(
        "<svg ",
        "<svg style=\"display:block;max-width:100%;height:auto\" ",
        1,
    )
}

fn svg_height(svg: &str) -> Option<f64> {
    let root = Regex::new(r"<svg\b[^>]*>").ok()?.find(svg)?.as_str();
    let view_box = attribute(root, "viewBox")?;
    view_box
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .nth(3)?
        .parse()
        .ok()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn chromium_command(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null());
    command
}

/// Runs Chromium, returns its stdout; its chatter on stderr is shown only
/// when it fails.
fn run_quietly(command: &mut Command, what: &str) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("{what}: starting Chromium"))?;
    if !output.status.success() {
        bail!(
            "{what}: Chromium failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Debian's Chromium, installed with apt-get when missing and we are root;
/// otherwise one line saying how to install it.
fn ensure_chromium() -> Result<PathBuf> {
    let installed = || {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(path) = installed() {
        return Ok(path);
    }
    eprintln!("xtask: missing chromium (rendering the book's figures at the book's width)");
    if !(harness::privilege::is_root() && Path::new("/usr/bin/apt-get").exists()) {
        bail!("install Chromium, e.g. `sudo apt-get install chromium`, then run this again");
    }
    shell::run(Command::new("apt-get").arg("update").arg("-q"))?;
    shell::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    installed().context("apt-get installed chromium, but there is no /usr/bin/chromium")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sizes_follow_css_precedence_and_the_scale() {
        // 1500 units drawn at 750 px: everything is halved.
        let svg = r#"<svg viewBox="0 0 1500 500" width="1500"><style>
            text { font-size: 30px; } .small { font-size: 20px; }
          </style>
          <text x="1">big enough</text>
          <text class="small">too small</text>
          <text font-size="40" class="x"><tspan>element rule wins: 15 px</tspan></text>
          <g font-size="10"><text style="font-size:28px">inline 14</text></g>
        </svg>"#;
        let problems = label_problems(svg);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("1 of 4 labels"), "{problems:?}");
        assert!(
            problems[0].contains("\"too small\", at 10.0 px"),
            "{problems:?}"
        );
        // Drawn for the column, a 14 px label is fine.
        let fine = r#"<svg viewBox="0 0 750 100" width="750"><text font-size="14">ok</text></svg>"#;
        assert!(label_problems(fine).is_empty());
        // Without a width the browser guesses: an error.
        assert!(!label_problems(r#"<svg viewBox="0 0 750 100"><text>x</text></svg>"#).is_empty());
    }
}
