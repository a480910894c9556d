//! Opt-in / opt-out by the `medic:managed` tag.

use crate::policy::Scope;

pub const MANAGED_TAG: &str = "medic:managed";

/// A resource's tags, as (key, value) pairs.
pub type Tags = Vec<(String, String)>;

pub fn tag_value<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Why a resource is out of scope, or `None` when medic may act on it. Every tag set is
/// consulted (for an ASG member: the instance's and the group's): `medic:managed=false` in any
/// case on any of them excludes (IAM denies it too), and under `Scope::Tagged` at least one must
/// say exactly `medic:managed=true`, as IAM's `StringEquals` condition does.
pub fn out_of_scope(scope: Scope, tag_sets: &[&[(String, String)]]) -> Option<String> {
    let values: Vec<&str> = tag_sets.iter().filter_map(|tags| tag_value(tags, MANAGED_TAG)).collect();
    if values.iter().any(|value| value.trim().eq_ignore_ascii_case("false")) {
        return Some(format!("tagged {MANAGED_TAG}=false (opted out)"));
    }
    match scope {
        Scope::All => None,
        Scope::Tagged if values.contains(&"true") => None,
        Scope::Tagged => match values.first() {
            Some(value) => Some(format!(
                "tagged {MANAGED_TAG}={value:?}, not exactly \"true\" (IAM compares it exactly), and MEDIC_SCOPE=tagged"
            )),
            None => Some(format!("not tagged {MANAGED_TAG}=true and MEDIC_SCOPE=tagged")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn given_tag_combinations_when_scoped_then_opt_out_wins_and_tagged_needs_opt_in() {
        let opted_in = tags(&[(MANAGED_TAG, "true")]);
        let opted_out = tags(&[(MANAGED_TAG, "False")]);
        let untagged = tags(&[("Name", "web")]);
        // Rule 14: IAM's StringEquals "true" is exact, so medic's opt-in is too.
        let capitalised = tags(&[(MANAGED_TAG, "True")]);
        let padded = tags(&[(MANAGED_TAG, " true")]);
        type Row<'a> = (Scope, Vec<&'a [(String, String)]>, bool);
        let cases: [Row<'_>; 10] = [
            (Scope::Tagged, vec![&capitalised], false),
            (Scope::Tagged, vec![&padded], false),
            (Scope::All, vec![&capitalised], true),
            (Scope::Tagged, vec![&opted_in], true),
            (Scope::Tagged, vec![&untagged, &opted_in], true),
            (Scope::Tagged, vec![&untagged], false),
            (Scope::Tagged, vec![&opted_in, &opted_out], false),
            (Scope::All, vec![&untagged], true),
            (Scope::All, vec![&opted_out], false),
            (Scope::All, vec![], true),
        ];
        for (scope, sets, in_scope) in cases {
            assert_eq!(out_of_scope(scope, &sets).is_none(), in_scope, "{scope:?} {sets:?}");
        }
    }
}
