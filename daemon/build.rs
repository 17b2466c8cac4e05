// The default data directory (../data) and the registry's PostgreSQL migrations
// (migrations/, embedded by sqlx::migrate!) are built into the binary; rebuild when
// either changes.
fn main() {
    println!("cargo:rerun-if-changed=../data");
    println!("cargo:rerun-if-changed=migrations");
}
