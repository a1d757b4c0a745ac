//! Rebuilds the binary when a template's files change: `include_dir!` embeds them but does not
//! tell cargo about files added later.

fn main() {
    println!("cargo:rerun-if-changed=templates");
}
