//! Pre-faulting the shared memory a PMD mapped, so that the first packets through it do not
//! take page faults on the data CPU.
//!
//! A memif port's regions (rings and packet buffers, one memfd each) are mapped by a secondary
//! process when it first sees the link up, with 4 KiB pages that are faulted in one by one as
//! the rings turn: a worker that takes a port over took about 2 000 faults in the first
//! thousands of packets (measured 2026-12-04, `perf record -e page-faults` on the data CPU
//! during handovers). The mappings are found by name in `/proc/self/maps` and populated with
//! `MADV_POPULATE_WRITE` (Linux 5.14), which maps every page without changing its content.

use std::io;

/// Populates every shared, writable mapping of this process whose path contains `name` (for
/// memif: `"memif_region"`, the memfds `/memfd:memif_region_N (deleted)`). Returns how many
/// mappings and bytes it populated.
///
/// # Errors
/// `/proc/self/maps` unreadable, or `madvise` refused (a kernel older than 5.14: `EINVAL`).
pub fn prefault_shared_mappings(name: &str) -> io::Result<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let (mut n, mut bytes) = (0, 0);
    for (start, end) in maps.lines().filter_map(|l| shared_writable(l, name)) {
        let len = end - start;
        // SAFETY: `start..end` is a whole mapping of this process (from /proc/self/maps, read
        // just now; the mappings named here are the PMD's, which it keeps while the port is
        // up). MADV_POPULATE_WRITE only faults the pages in, as a write would, without writing:
        // no byte of the mapping changes, so no other user of the memory can observe it.
        unsafe { rustix::mm::madvise(start as *mut _, len, rustix::mm::Advice::LinuxPopulateWrite) }?;
        n += 1;
        bytes += len;
    }
    Ok((n, bytes))
}

/// The address range of one `/proc/<pid>/maps` line, if it is a shared writable mapping
/// whose path contains `name`.
fn shared_writable(line: &str, name: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3)?;
    if !(perms.starts_with("rw") && perms.ends_with('s') && path.contains(name)) {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/<pid>/maps` lines: only shared writable mappings of the name are taken.
    #[test]
    fn maps_lines_select_the_shared_writable_regions_by_name() {
        let line = |perms: &str, path: &str| format!("7f5a82000000-7f5a82800000 {perms} 00000000 00:01 1234 {path}");
        let region = "/memfd:memif_region_0 (deleted)";
        assert_eq!(shared_writable(&line("rw-s", region), "memif_region"), Some((0x7f5a_8200_0000, 0x7f5a_8280_0000)));
        assert_eq!(shared_writable(&line("rw-p", region), "memif_region"), None, "private");
        assert_eq!(shared_writable(&line("r--s", region), "memif_region"), None, "read-only");
        assert_eq!(shared_writable(&line("rw-s", "/dev/hugepages/rtemap_0"), "memif_region"), None);
        assert_eq!(shared_writable("7f5a82000000-7f5a82800000 rw-s 00000000 00:01 1234", "memif_region"), None);
        assert_eq!(shared_writable("zz-7f rw-s 0 00:01 1 /memfd:memif_region_1", "memif_region"), None);
    }

    /// A shared memfd mapping of this process is found and populated.
    #[test]
    fn a_shared_mapping_is_populated() {
        let fd = rustix::fs::memfd_create("memif_region_test", rustix::fs::MemfdFlags::empty()).unwrap();
        rustix::fs::ftruncate(&fd, 1 << 20).unwrap();
        let file = std::fs::File::from(fd);
        // SAFETY: a fresh memfd of 1 MiB mapped shared, unmapped below; nothing else maps it.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                1 << 20,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &file,
                0,
            )
        }
        .unwrap();
        let got = prefault_shared_mappings("memif_region_test").unwrap();
        // SAFETY: the mapping made above, unmapped once.
        unsafe { rustix::mm::munmap(p, 1 << 20) }.unwrap();
        assert_eq!(got, (1, 1 << 20));
    }
}
