//! Defaults that map shopbridge's chart and VAT codes to the SAF-T code lists.
//!
//! SAF-T Financial 1.30 groups every account by `GroupingCategory`/`GroupingCode` from the
//! "næringsspesifikasjon" list (tests/fixtures/saft/naeringsspesifikasjon.csv). The defaults
//! below cover the default chart ([`crate::posting::default_accounts`]); an account the
//! operator added, or one they want grouped otherwise, takes the `saft_grouping_category` and
//! `saft_grouping_code` columns of `accounts` (see docs/operations.md).

/// Balance-sheet category: current assets.
const CURRENT_ASSETS: &str = "balanseverdiForOmloepsmiddel";
/// Balance-sheet category: current liabilities.
const CURRENT_LIABILITIES: &str = "kortsiktigGjeld";
/// Income-statement category: sales revenue.
const SALES: &str = "salgsinntekt";
/// Income-statement category: other operating costs.
const OTHER_COSTS: &str = "annenDriftskostnad";

/// The default grouping of an account of the default chart: (category, code).
#[must_use]
pub fn default_grouping(account: i32) -> Option<(&'static str, &'static str)> {
    Some(match account {
        1500 => (CURRENT_ASSETS, "1500"), // Kundefordringer
        // A payment provider's clearing account is a short-term claim, not a bank deposit.
        1522 => (CURRENT_ASSETS, "1570"), // Andre kortsiktige krav/fordringer
        1920 => (CURRENT_ASSETS, "1920"), // Bankinnskudd
        // Output VAT of every rate is owed to the state: the VAT settlement line.
        2700 | 2701 | 2703 => (CURRENT_LIABILITIES, "2740"), // Oppgjørskonto merverdiavgift
        2900 => (CURRENT_LIABILITIES, "2900"),               // Forskudd fra kunder
        // Goods and shipping at 25, 15 and 12 %: sales subject to VAT.
        3000 | 3030 | 3050 | 3080 => (SALES, "3000"), // Salgsinntekt og uttak, avgiftspliktig
        3100 | 3105 => (SALES, "3100"),               // Salgsinntekt og uttak, avgiftsfritt
        3200 => (SALES, "3200"), // Salgsinntekt og uttak, utenfor merverdiavgiftsloven
        // Neither rounding nor card fees has a code of its own: other costs.
        7740 | 7770 => (OTHER_COSTS, "7700"), // Annen kostnad
        _ => return None,
    })
}

/// The Norwegian description of a standard VAT code (Standard_Tax_Codes.csv), for the codes a
/// webshop posts with.
#[must_use]
pub fn tax_code_description(code: i32) -> Option<&'static str> {
    Some(match code {
        3 | 31 | 32 | 33 => "Utgående merverdiavgift",
        5 => "Innenlands omsetning og uttak fritatt for merverdiavgift",
        51 => "Innenlandsk omsetning med omvendt avgiftplikt",
        52 => "Utførsel av varer og tjenester",
        6 => "Omsetning og uttak utenfor merverdiavgiftsloven",
        7 => "Ingen merverdiavgiftsbehandling (inntekter)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posting::default_accounts;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/saft/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_default_account_has_a_grouping_on_the_official_list() {
        let list = fixture("naeringsspesifikasjon.csv");
        let pairs: Vec<(String, String)> = list
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(';').collect();
                Some((f.first()?.to_string(), f.get(3)?.to_string()))
            })
            .collect();
        for a in default_accounts() {
            let n = i32::try_from(a.number.0).unwrap();
            let (category, code) = default_grouping(n).unwrap_or_else(|| panic!("{n} unmapped"));
            assert!(
                pairs.iter().any(|(c, g)| c == category && g == code),
                "{n}: {category}/{code} is not on the list"
            );
        }
    }

    #[test]
    fn the_default_vat_codes_are_standard_codes_with_their_official_descriptions() {
        let list = fixture("Standard_Tax_Codes.csv");
        for code in [3, 31, 33, 5, 52, 6] {
            let line = list
                .lines()
                .find(|l| l.starts_with(&format!("{code};")))
                .unwrap_or_else(|| panic!("code {code} is not a standard code"));
            let description = tax_code_description(code).unwrap();
            assert!(line.contains(description), "{line} / {description}");
        }
    }
}
