pub const SUMMARY: &str = "summary";
