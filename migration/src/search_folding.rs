//! The accents a search ignores: the database folds the stored names with
//! this table (`translate`), the server folds the typed term with it.

/// Lower-case letters with accents, each folded to the letter at the same
/// position of [`UNACCENTED`].
pub const ACCENTED: &str = "àáâãäåāăąçćčďèéêëēėęěìíîïīįłñńňòóôõöøōőŕřśšşťùúûüūůűųýÿźżž";
pub const UNACCENTED: &str = "aaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorrssstuuuuuuuuyyzzz";

/// `text` lower-cased with its accents folded, as the database folds names.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(
            |c| match ACCENTED.chars().position(|accented| accented == c) {
                Some(at) => UNACCENTED.chars().nth(at).unwrap_or(c),
                None => c,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_accented_letter_has_one_plain_letter() {
        assert_eq!(ACCENTED.chars().count(), UNACCENTED.chars().count());
        assert!(UNACCENTED.chars().all(|c| c.is_ascii_lowercase()));
    }

    #[test]
    fn names_fold_to_plain_lower_case() {
        assert_eq!(fold("García Muñoz"), "garcia munoz");
        assert_eq!(fold("ŁUKASZ Żółć"), "lukasz zolc");
        assert_eq!(fold("+34 612"), "+34 612");
    }
}
