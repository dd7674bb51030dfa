//! EAL command lines for the primary and for each worker, derived from the config alone.

use conf::{Config, Device, Lcore};

/// The `-l`/`--lcores` argument placing one lcore id on a CPU.
fn lcore_arg(l: &Lcore) -> String {
    match l.cpu {
        Some(cpu) => format!("--lcores={}@{}", l.id, cpu),
        None => format!("--lcores={}", l.id),
    }
}

/// Arguments shared by the primary and the workers.
fn common(cfg: &Config, args: &mut Vec<String>) {
    args.push(format!("--file-prefix={}", cfg.instance.file_prefix));
    args.push(format!("--huge-dir={}", cfg.instance.huge_dir.display()));
    // DPDK's own log level; DPVS_EAL_LOG_LEVEL overrides it (e.g. `pmd.net.memif:debug`).
    let level = std::env::var("DPVS_EAL_LOG_LEVEL").unwrap_or_else(|_| "*:notice".to_owned());
    args.push(format!("--log-level={level}"));
    let pci: Vec<&str> = cfg
        .ports
        .iter()
        .filter_map(|p| match &p.device {
            Device::Pci(a) => Some(a.as_str()),
            Device::Vdev(_) => None,
        })
        .collect();
    if pci.is_empty() {
        args.push("--no-pci".into());
    } else {
        args.extend(pci.iter().map(|a| format!("--allow={a}")));
    }
}

/// The primary's EAL arguments (`argv[0]` included).
pub fn primary(cfg: &Config) -> Vec<String> {
    let mut args = vec!["dpvs".to_owned(), lcore_arg(&cfg.instance.main_lcore), "--proc-type=primary".into()];
    common(cfg, &mut args);
    for p in &cfg.ports {
        if let Device::Vdev(v) = &p.device {
            args.push(format!("--vdev={v}"));
        }
    }
    args
}

/// A worker's EAL arguments (`argv[0]` included). Vdevs come from the primary over IPC.
pub fn worker(cfg: &Config, lcore: &Lcore) -> Vec<String> {
    let mut args = vec!["dpvs-worker".to_owned(), lcore_arg(lcore), "--proc-type=secondary".into()];
    common(cfg, &mut args);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_command_lines() {
        let cfg = Config::embedded_default();
        let p = primary(&cfg);
        assert_eq!(p[1], "--lcores=0@0");
        assert!(p.contains(&"--proc-type=primary".to_owned()));
        assert!(p.contains(&"--no-pci".to_owned()));
        assert!(p.contains(&format!("--file-prefix={}", cfg.instance.file_prefix)));
        assert_eq!(p.iter().filter(|a| a.starts_with("--vdev=net_tap")).count(), 2);
        let (_, wl) = cfg.worker_lcores().next().unwrap();
        let w = worker(&cfg, &wl.lcore);
        assert_eq!(w[1], "--lcores=1@1");
        assert!(w.contains(&"--proc-type=secondary".to_owned()));
        assert!(!w.iter().any(|a| a.starts_with("--vdev")), "secondaries get vdevs from the primary");
    }

    #[test]
    fn pci_ports_are_allowed_not_no_pci() {
        let text = conf_text_with_pci();
        let cfg = Config::from_str(&text, "t.toml").unwrap();
        let p = primary(&cfg);
        assert!(p.contains(&"--allow=0000:03:00.0".to_owned()));
        assert!(!p.contains(&"--no-pci".to_owned()));
        assert!(worker(&cfg, &cfg.instance.main_lcore).contains(&"--allow=0000:03:00.0".to_owned()));
    }

    fn conf_text_with_pci() -> String {
        r#"
[instance]
name = "t"
[[ports]]
name = "dpdk0"
pci = "0000:03:00.0"
[forwarding]
mode = "l2-reflect"
[[groups]]
name = "g"
[[groups.lcores]]
id = 1
rx = ["dpdk0:0"]
"#
        .to_owned()
    }
}
