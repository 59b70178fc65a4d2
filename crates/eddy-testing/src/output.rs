//! The output of Eddy's exactly-once file sink as a test sees it: the lines of the visible part
//! files (hidden in-progress and pending files are not output), as a sorted multiset, and a
//! comparison that names what is missing, extra or twice without dumping thousands of lines.

use std::path::Path;

/// Compares outputs without dumping thousands of lines.
pub fn assert_same_lines(got: &[String], expected: &[String]) {
    if got != expected {
        let missing: Vec<&String> = expected
            .iter()
            .filter(|l| !got.contains(l))
            .take(5)
            .collect();
        let extra: Vec<&String> = got
            .iter()
            .filter(|l| !expected.contains(l))
            .take(5)
            .collect();
        let mut dups = got.to_vec();
        dups.dedup();
        panic!(
            "output differs: {} lines, expected {} ({} duplicates); missing e.g. {missing:?}; \
             unexpected e.g. {extra:?}",
            got.len(),
            expected.len(),
            got.len() - dups.len()
        );
    }
}

/// Finished (visible) lines of the exactly-once file sink's output, sorted.
pub fn finished_lines(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.extend(
                    std::fs::read_to_string(&p)
                        .unwrap()
                        .lines()
                        .map(str::to_string),
                );
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}
