//! The systemd units in dist/systemd: `systemd-analyze verify` accepts them, with their
//! commands pointing at this build's binaries (it checks that each is executable).

use std::path::Path;
use std::process::Command;

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bins = integration::bin("dpvs").parent().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("dpvs-systemd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut units = Vec::new();
    for unit in ["dpvs.service", "dpvs-exporter.service", "dpvs-health.service"] {
        let text = std::fs::read_to_string(root.join("dist/systemd").join(unit)).unwrap();
        assert!(text.contains("/usr/local/bin/"), "{unit} runs the installed binaries");
        let here = text.replace("/usr/local/bin/", &format!("{}/", bins.display()));
        std::fs::write(dir.join(unit), here).unwrap();
        units.push(dir.join(unit));
    }
    let out = Command::new("systemd-analyze").arg("verify").args(&units).output().expect("systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}
