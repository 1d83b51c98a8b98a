use super::*;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

fn ctx() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::create_dir_all(p.join("src/sub")).unwrap();
    fs::create_dir_all(p.join("logs")).unwrap();
    fs::write(p.join("a.txt"), "a").unwrap();
    fs::write(p.join("b.txt"), "bb").unwrap();
    fs::write(p.join("src/main.c"), "int main;").unwrap();
    fs::write(p.join("src/sub/x.c"), "x").unwrap();
    fs::write(p.join("logs/1.log"), "log").unwrap();
    fs::write(p.join("logs/keep.log"), "keep").unwrap();
    fs::write(p.join("secret.key"), "k").unwrap();
    fs::write(p.join("Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(
        p.join(".dockerignore"),
        "*.key\nlogs\n!logs/keep.log\nDockerfile\n",
    )
    .unwrap();
    symlink("/etc", p.join("escape")).unwrap();
    symlink("../../../../etc/passwd", p.join("escape2")).unwrap();
    symlink("src", p.join("srclink")).unwrap();
    d
}

fn paths(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn walk_applies_dockerignore() {
    let d = ctx();
    let t = Tree::open_context(d.path()).unwrap();
    let all = t.walk("", None).unwrap();
    assert_eq!(
        paths(&all),
        vec![
            ".dockerignore",
            "a.txt",
            "b.txt",
            "escape",
            "escape2",
            "logs/keep.log",
            "src",
            "src/main.c",
            "src/sub",
            "src/sub/x.c",
            "srclink"
        ]
    );
    let link = all.iter().find(|e| e.path == "escape").unwrap();
    assert_eq!(link.kind, FileKind::Symlink("/etc".into()));
    assert_eq!(
        paths(&t.walk("src", Some(1)).unwrap()),
        vec!["src/main.c", "src/sub"]
    );
}

#[test]
fn symlinks_never_leave_the_context() {
    let d = ctx();
    let t = Tree::open_context(d.path()).unwrap();
    // /etc/passwd exists on the host, but inside the context the link resolves to <ctx>/etc.
    let e = t.resolve(&["escape/passwd".into()], "COPY", 4).unwrap_err();
    assert_eq!(e.line, 4);
    assert!(e.message.contains("file not found in build context"), "{e}");
    let e = t.resolve(&["escape2".into()], "COPY", 4).unwrap_err();
    assert!(e.message.contains("escape2"), "{e}");
    assert!(t.open_file("escape2").is_err());
    assert!(t.open_file("../../../etc/passwd").is_err());
    // A link to a directory inside the context copies that directory's contents.
    let r = t.resolve(&["srclink".into()], "COPY", 4).unwrap();
    assert_eq!(r.kind, "dir");
    let rels: Vec<&str> = r.files.iter().map(|f| f.dest_rel.as_str()).collect();
    assert_eq!(rels, vec!["", "main.c", "sub", "sub/x.c"]);
}

#[test]
fn sources_wildcards_dirs_and_errors() {
    let d = ctx();
    let t = Tree::open_context(d.path()).unwrap();
    let r = t.resolve(&["*.txt".into()], "COPY", 3).unwrap();
    assert_eq!(r.kind, "multi");
    let rels: Vec<&str> = r.files.iter().map(|f| f.dest_rel.as_str()).collect();
    assert_eq!(rels, vec!["a.txt", "b.txt"]);
    let r = t.resolve(&["src/*/x.c".into()], "COPY", 3).unwrap();
    assert_eq!(r.files[0].dest_rel, "x.c");
    let r = t.resolve(&["./src/main.c".into()], "ADD", 3).unwrap();
    assert_eq!(r.kind, "file");
    assert_eq!(r.files[0].entry.path, "src/main.c");
    let r = t.resolve(&["/".into()], "COPY", 3).unwrap();
    assert_eq!(r.kind, "dir");
    assert!(!r.files.iter().any(|f| f.dest_rel == "secret.key"));
    let e = t.resolve(&["missing.txt".into()], "COPY", 9).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:9: COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist");
    assert!(
        t.resolve(&["secret.key".into()], "COPY", 9).is_err(),
        "excluded"
    );
    assert!(
        t.resolve(&["logs/1.log".into()], "COPY", 9).is_err(),
        "excluded dir"
    );
    assert!(
        t.resolve(&["logs/keep.log".into()], "COPY", 9).is_ok(),
        "exception"
    );
    let e = t.resolve(&["*.none".into()], "COPY", 9).unwrap_err();
    assert!(e.message.contains("no source files"), "{e}");
}

#[test]
fn hash_tracks_content_mode_and_names() {
    let d = ctx();
    let t = Tree::open_context(d.path()).unwrap();
    let h = |t: &Tree| t.resolve(&["src".into()], "COPY", 1).unwrap().hash;
    let h1 = h(&t);
    assert_eq!(h1, h(&t), "deterministic");
    assert_eq!(h1.len(), 64);
    fs::write(d.path().join("src/main.c"), "int main();").unwrap();
    let h2 = h(&t);
    assert_ne!(h1, h2, "content");
    fs::set_permissions(
        d.path().join("src/main.c"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let h3 = h(&t);
    assert_ne!(h2, h3, "mode");
    fs::rename(d.path().join("src/sub/x.c"), d.path().join("src/sub/y.c")).unwrap();
    assert_ne!(h3, h(&t), "names");
    // Ignored files do not affect the hash of the whole context.
    let whole = |t: &Tree| t.resolve(&[".".into()], "COPY", 1).unwrap().hash;
    let w1 = whole(&t);
    fs::write(d.path().join("secret.key"), "changed").unwrap();
    assert_eq!(w1, whole(&t));
}

#[test]
fn open_errors() {
    assert!(Tree::open_context(Path::new("/nonexistent/ctx")).is_err());
    let d = ctx();
    assert!(Tree::open_root(&d.path().join("a.txt")).is_err());
}
