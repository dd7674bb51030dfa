//! The man pages (scripts/man.sh): every binary's from its clap definition, dpip's, and
//! dpvs.toml(5) with the annotated default configuration; each renders with man-db without a
//! warning from groff.

use std::process::Command;

#[test]
fn man_pages_render_without_warnings() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bins = integration::bin("dpvs").parent().unwrap().to_owned();
    let out = std::env::temp_dir().join(format!("dpvs-man-{}", std::process::id()));
    let made = Command::new(root.join("scripts/man.sh")).arg(&out).arg(&bins).output().expect("scripts/man.sh");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mut pages = Vec::new();
    for section in ["man1", "man5"] {
        for e in std::fs::read_dir(out.join(section)).unwrap() {
            pages.push(e.unwrap().path());
        }
    }
    let names: Vec<String> = pages.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in [
        "dpvs.1",
        "dpvsctl.1",
        "dpvsctl-top.1",
        "ipvsadm.1",
        "dpip.1",
        "dpvs-gen.1",
        "dpvs-exporter.1",
        "dpvs-health.1",
        "dpvs.toml.5",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    for page in &pages {
        let r = Command::new("man").args(["--warnings", "-l"]).arg(page).env("MANWIDTH", "100").output().expect("man");
        let (text, warned) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
        assert!(r.status.success() && warned.trim().is_empty(), "{}: {warned}", page.display());
        assert!(text.contains("NAME"), "{}: {text}", page.display());
    }
    let conf = Command::new("man").args(["-l"]).arg(out.join("man5/dpvs.toml.5")).output().unwrap();
    let conf = String::from_utf8_lossy(&conf.stdout);
    assert!(conf.contains("capacity_per_lcore = 65536") && conf.contains("[[services.reals]]"), "{conf}");
    let _ = std::fs::remove_dir_all(&out);
}
