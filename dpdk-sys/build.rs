//! Finds DPDK with `pkg-config`, compiles the C shim with DPDK's own cflags, generates bindings
//! for an explicit allowlist, and links DPDK as shared libraries (so every binary built against
//! the same DPDK can attach as a secondary, and so can `dpdk-proc-info` and `dpdk-dumpcap`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .expect("pkg-config not found: install pkg-config and libdpdk-dev");
    if !out.status.success() {
        panic!(
            "pkg-config {args:?} libdpdk failed ({}): install libdpdk-dev (DPDK 22.11)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout)
        .expect("pkg-config output is not UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    // The raw cflags carry `-include rte_config.h` and `-march=...`, which DPDK's headers need.
    let cflags = pkg_config(&["--cflags"]);

    let mut build = cc::Build::new();
    build.file("csrc/shim.c").opt_level(3).define("ALLOW_EXPERIMENTAL_API", None);
    for f in &cflags {
        build.flag(f);
    }
    build.warnings(false).compile("dpdkshim");

    for f in pkg_config(&["--libs"]) {
        if let Some(dir) = f.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = f.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        } else {
            println!("cargo:rustc-link-arg={f}");
        }
    }

    let bindings = bindgen::Builder::default()
        .header("csrc/shim.h")
        .clang_args(&cflags)
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        .allowlist_function("rte_eal_.*")
        .allowlist_function("rte_eth_dev_.*")
        .allowlist_function("rte_eth_(rx|tx)_queue_setup")
        .allowlist_function("rte_eth_(stats_get|stats_reset|macaddr_get|promiscuous_enable|link_get_nowait)")
        .allowlist_function("rte_eth_(xstats_get|xstats_get_names)")
        .allowlist_function("rte_mempool_(lookup|free|avail_count|in_use_count|obj_iter)")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_ring_(create|lookup|free)")
        .allowlist_function("rte_memzone_(reserve|lookup|free)")
        .allowlist_function("rte_lcore_count")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_dev_probe")
        .allowlist_function("shim_.*")
        .allowlist_function("rte_telemetry_register_cmd|rte_tel_data_.*")
        .allowlist_type("rte_tel_value_type")
        .allowlist_var("RTE_TEL_MAX_.*|RTE_PDUMP_FLAG_.*|RTE_PDUMP_ALL_QUEUES")
        .allowlist_type("rte_eth_conf|rte_eth_dev_info|rte_eth_stats|rte_eth_link|rte_ether_addr")
        .allowlist_type("rte_eth_rxconf|rte_eth_txconf|rte_proc_type_t")
        .allowlist_var("RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_MEMPOOL_CACHE_MAX_SIZE")
        .allowlist_var("RTE_PKTMBUF_HEADROOM|RING_F_.*|RTE_ETH_NAME_MAX_LEN|RTE_ETHER_ADDR_LEN")
        .allowlist_var("SHIM_.*")
        .allowlist_type("shim_recovery")
        .allowlist_type("rte_mbuf")
        .opaque_type("rte_mempool")
        .opaque_type("rte_ring")
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen failed on csrc/shim.h (is libclang-dev installed?)");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    bindings.write_to_file(out.join("bindings.rs")).expect("cannot write bindings.rs");
}
