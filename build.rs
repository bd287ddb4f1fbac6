//! Rebuild when a migration changes: `sqlx::migrate!` (in `store`, and in every
//! `#[sqlx::test]`) embeds `migrations/` at compile time, and cargo does not watch that
//! directory by itself, so an edited migration was silently left out of the next build.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
