//! A dynamically linked host program, moved into a root filesystem with what it
//! needs to start there: for the fixture images built from host packages (the
//! redis image of [`crate::images::redis`]).
//!
//! A dynamically linked executable does not run on its own. Its ELF header names
//! a program interpreter (PT_INTERP, the dynamic loader: `ld.so(8)`), which the
//! kernel starts in its place; the loader then finds and maps every shared
//! library the program needs, and theirs. In a root filesystem the program, the
//! loader at the exact path PT_INTERP names, and each library where the loader
//! will look for it must all be there, or `exec` fails with a bare `ENOENT`.
//!
//! Which libraries, the loader itself says: run in list mode (`ld.so --list
//! PROGRAM`, what `ldd` does) it resolves them as it would for a real start and
//! prints one line each. Each is copied at the path the loader printed, with the
//! host's symlinks on the way made again (a merged `/lib -> usr/lib`, a
//! `libssl.so.3 -> libssl.so.3.0.x`), so the loader finds them in the root
//! filesystem exactly as it does on the host: through its built-in search path,
//! without an `/etc/ld.so.cache`.
//!
//! SIMPLIFICATION: libraries a program opens itself at run time (`dlopen(3)`,
//! NSS modules for `getpwnam(3)`) are not listed by the loader and are not
//! copied. redis needs none to serve; a program that does would need them
//! named by hand.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Copies the host's `program` into `root` at `to` (an absolute path inside
/// it), as a regular file even when the host's path is a symlink (Debian's
/// `/usr/bin/redis-server -> redis-check-rdb`), with its loader and every
/// library the loader lists, at their host paths.
pub fn install(root: &Path, program: &Path, to: &Path) -> Result<(), String> {
    let target = inside(root, to);
    fs::create_dir_all(target.parent().expect("a program's path has a directory"))
        .map_err(at(&target))?;
    fs::copy(program, &target).map_err(at(program))?;
    for file in needed_files(program)? {
        copy_host_path(root, &file)?;
    }
    Ok(())
}

/// What the loader needs to start `program`: the loader itself (at the path
/// PT_INTERP names), then each library it lists, as it names them (they may
/// be symlinks). Empty for a static program.
pub fn needed_files(program: &Path) -> Result<Vec<PathBuf>, String> {
    let Some(loader) = crate::fixtures::interpreter(program)? else {
        return Ok(Vec::new());
    };
    let out = Command::new(&loader)
        .arg("--list")
        .arg(program)
        .output()
        .map_err(|e| format!("running {} --list: {e}", loader.display()))?;
    let listing = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} --list {} failed ({}): {}{}",
            loader.display(),
            program.display(),
            out.status,
            listing.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut files = vec![loader];
    for path in parse_listing(&listing).map_err(|e| format!("{}: {e}", program.display()))? {
        if !files.contains(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

/// The paths in the loader's list mode output, one line a library:
/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or a bare path for
/// the loader itself, or no path at all for the kernel's vDSO
/// (`linux-vdso.so.1 (0x...)`, which is no file). A library the loader cannot
/// find (`=> not found`) is an error: the program would not start.
fn parse_listing(listing: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in listing.lines().map(str::trim) {
        let (name, resolved) = match line.split_once(" => ") {
            Some((name, resolved)) => (name, resolved),
            None => (line, line),
        };
        if resolved.starts_with("not found") {
            return Err(format!("the dynamic loader cannot find {name}"));
        }
        let path = resolved.split(" (").next().unwrap_or_default();
        if path.starts_with('/') {
            paths.push(PathBuf::from(path));
        }
    }
    Ok(paths)
}

/// An I/O error as one line naming the file it happened to.
fn at(path: &Path) -> impl Fn(std::io::Error) -> String {
    let path = path.display().to_string();
    move |e| format!("{path}: {e}")
}

/// `path` (absolute) below `root`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Copies the host's `path` into `root` at the same place, one component at a
/// time: a symlink met on the way is made again in `root` as the same link (its
/// target unchanged, relative or absolute: both mean the same once `root` is
/// the container's `/`), and the walk goes on from its target; directories are
/// created; the regular file at the end is copied.
fn copy_host_path(root: &Path, path: &Path) -> Result<(), String> {
    // The components still to walk, the next one last; and the real directory
    // (no symlink in it) reached so far, so `..` is simply its parent.
    let mut rest: Vec<OsString> = Vec::new();
    let push = |rest: &mut Vec<OsString>, path: &Path| {
        rest.extend(path.components().rev().filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        }));
    };
    push(&mut rest, path);
    let mut reached = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = rest.pop() {
        if name == ".." {
            reached.pop();
            continue;
        }
        let host = reached.join(&name);
        let copy = inside(root, &host);
        let kind = fs::symlink_metadata(&host).map_err(at(&host))?.file_type();
        if kind.is_symlink() {
            links += 1;
            if links > 40 {
                return Err(format!("{}: too many levels of symlinks", path.display()));
            }
            let target = fs::read_link(&host).map_err(at(&host))?;
            if fs::symlink_metadata(&copy).is_err() {
                symlink(&target, &copy).map_err(at(&copy))?;
            }
            if target.is_absolute() {
                reached = PathBuf::from("/");
            }
            push(&mut rest, &target);
        } else if kind.is_dir() {
            fs::create_dir_all(&copy).map_err(at(&copy))?;
            reached = host;
        } else if rest.is_empty() {
            fs::copy(&host, &copy).map_err(at(&host))?;
        } else {
            return Err(format!("{}: not a directory", host.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_gives_each_library_and_the_loader_but_not_the_vdso() {
        let listing = "\tlinux-vdso.so.1 (0x00007ffd)\n\
             \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f9f)\n\
             \t/lib64/ld-linux-x86-64.so.2 (0x00007f9f)\n";
        assert_eq!(
            parse_listing(listing).unwrap(),
            [
                Path::new("/lib/x86_64-linux-gnu/libm.so.6"),
                Path::new("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        let missing = "\tlibgone.so.1 => not found\n";
        assert_eq!(
            parse_listing(missing).unwrap_err(),
            "the dynamic loader cannot find libgone.so.1"
        );
    }

    #[test]
    fn a_host_path_is_copied_with_the_links_on_its_way() {
        // A host tree of our own: `lib -> usr/lib`, and in it an absolute link
        // and a relative one with `..`, as merged-/usr Debian has.
        let host = tempfile::tempdir().unwrap();
        let h = host.path();
        fs::create_dir_all(h.join("usr/lib/arch")).unwrap();
        fs::create_dir_all(h.join("usr/lib64")).unwrap();
        fs::write(h.join("usr/lib/arch/libx.so.1.2"), "x").unwrap();
        symlink("usr/lib", h.join("lib")).unwrap();
        symlink("libx.so.1.2", h.join("usr/lib/arch/libx.so.1")).unwrap();
        symlink(
            h.join("lib/arch/libx.so.1"),
            h.join("usr/lib64/libx-abs.so"),
        )
        .unwrap();
        symlink("../lib/arch/libx.so.1", h.join("usr/lib64/libx-rel.so")).unwrap();

        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for name in ["lib/arch/libx.so.1", "usr/lib64/libx-rel.so"] {
            copy_host_path(r, &h.join(name)).unwrap();
        }
        let copied = inside(r, h);
        let link = |p: &str| fs::read_link(copied.join(p)).unwrap();
        assert_eq!(link("lib"), Path::new("usr/lib"));
        assert_eq!(link("usr/lib/arch/libx.so.1"), Path::new("libx.so.1.2"));
        assert_eq!(
            link("usr/lib64/libx-rel.so"),
            Path::new("../lib/arch/libx.so.1")
        );
        assert!(
            fs::symlink_metadata(copied.join("usr/lib/arch/libx.so.1.2"))
                .is_ok_and(|m| m.is_file())
        );
        assert_eq!(
            fs::read_to_string(copied.join("usr/lib64/libx-rel.so")).unwrap(),
            "x"
        );
        // An absolute link is kept as it is, and followed on the host.
        copy_host_path(r, &h.join("usr/lib64/libx-abs.so")).unwrap();
        assert_eq!(link("usr/lib64/libx-abs.so"), h.join("lib/arch/libx.so.1"));
    }

    #[test]
    fn this_test_needs_its_loader_first_and_a_c_library() {
        let me = std::env::current_exe().unwrap();
        let files = needed_files(&me).unwrap();
        assert_eq!(
            Some(&files[0]),
            crate::fixtures::interpreter(&me).unwrap().as_ref()
        );
        assert!(files.iter().any(|f| f.ends_with("libc.so.6")), "{files:?}");
        assert!(
            files.iter().all(|f| f.is_absolute() && f.exists()),
            "{files:?}"
        );
    }
}
