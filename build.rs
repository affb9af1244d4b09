//! Turns `data/common-passwords.txt` (one password a line, most common first) into a sorted
//! static table, so the password policy does a binary search over data that is already in the
//! binary: nothing is parsed, allocated or sorted at cold start.
//!
//! Entries outside the length policy (8..=128 characters) are dropped here: the length rule
//! rejects them before the list is consulted, so keeping them would only cost bytes.

use std::{env, fs, path::Path};

const LIST: &str = "data/common-passwords.txt";

fn main() {
    println!("cargo::rerun-if-changed={LIST}");
    let text = fs::read_to_string(LIST).expect("data/common-passwords.txt is readable");
    let mut entries: Vec<String> = text
        .lines()
        .map(|line| line.trim().to_lowercase())
        .filter(|p| (8..=128).contains(&p.chars().count()))
        .collect();
    entries.sort_unstable();
    entries.dedup();

    let mut out = String::from("/// Common passwords (8..=128 chars, lower-case, sorted).\n");
    out.push_str(&format!(
        "pub static COMMON_PASSWORDS: [&str; {}] = [\n",
        entries.len()
    ));
    for entry in &entries {
        out.push_str(&format!("    {entry:?},\n"));
    }
    out.push_str("];\n");
    let dest =
        Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("common_passwords.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
