//! Kubernetes resource quantities (`500m`, `2`, `1.5`, `512Mi`, `2G`, `1e3`), checked before
//! they reach a cluster that would refuse the manifest.

/// The suffixes a quantity may end with: binary (`Ki`..`Ei`), decimal (`n`..`E`), or none.
const SUFFIXES: [&str; 14] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P"];

/// True when `text` is a quantity Kubernetes accepts: an unsigned decimal number (digits, at
/// most one `.`) followed by a suffix, an exponent (`e3`, `E-2`) or nothing. Signs are refused
/// here: a negative request is never meant.
pub(crate) fn is_quantity(text: &str) -> bool {
    let number_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return false;
    }
    if suffix.is_empty() || SUFFIXES.contains(&suffix) || suffix == "E" {
        return true;
    }
    // An exponent: e or E, an optional sign, digits.
    let Some(exponent) = suffix.strip_prefix(['e', 'E']) else { return false };
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !exponent.is_empty() && exponent.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::is_quantity;

    #[test]
    fn usual_cpu_and_memory_amounts_pass() {
        for good in ["1", "500m", "0.5", "2.", "512Mi", "1Gi", "2G", "100k", "1e3", "1E-2", "3E"] {
            assert!(is_quantity(good), "{good}");
        }
    }

    #[test]
    fn typos_and_units_kubernetes_does_not_know_fail() {
        for bad in ["", "m", "1GB", "1 Gi", "-1", "1.2.3", "1gi", "1e", "two", "1Gi ", ".e3"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
