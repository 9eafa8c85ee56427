//! Counts in words, with the plural right: "1 call", "2 calls", "0 calls". English only, as
//! every text the appliance shows.

/// `count` followed by `one` when it is exactly 1, by `many` otherwise.
pub fn count(count: impl Into<u64>, one: &str, many: &str) -> String {
    let count = count.into();
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1u8, "call", "calls"), "1 call");
        assert_eq!(count(0u8, "call", "calls"), "0 calls");
        assert_eq!(count(2u8, "call", "calls"), "2 calls");
        assert_eq!(count(21u32, "duplicate", "duplicates"), "21 duplicates");
    }
}
