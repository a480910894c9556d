//! AWS identifiers taken from events, checked against AWS's documented formats before any of
//! them reaches an AWS call. A bad one makes the event malformed, naming the field and the rule.

use crate::envelope::MalformedEvent;

/// `i-` and 8 or 17 lowercase hex digits (EC2 resource ids).
pub fn instance_id(field: &str, value: &str) -> Result<(), MalformedEvent> {
    let hex = value.strip_prefix("i-").unwrap_or_default();
    let ok = matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    check(ok, field, value, "an EC2 instance id: i- and 8 or 17 lowercase hex digits")
}

/// Auto Scaling group names: 1 to 255 ASCII characters 33 to 126, no colon.
pub fn group_name(field: &str, value: &str) -> Result<(), MalformedEvent> {
    let ok = (1..=255).contains(&value.len()) && value.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    check(ok, field, value, "an Auto Scaling group name: 1 to 255 printable ASCII characters, no space or colon")
}

/// RDS DB instance and cluster identifiers: 1 to 63 letters, digits or hyphens, starting with a
/// letter, with no two hyphens in a row and no hyphen at the end.
pub fn db_identifier(field: &str, value: &str) -> Result<(), MalformedEvent> {
    let ok = (1..=63).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !value.ends_with('-')
        && !value.contains("--");
    check(
        ok,
        field,
        value,
        "an RDS identifier: 1 to 63 letters, digits or hyphens, starting with a letter, no -- and no - at the end",
    )
}

/// CloudWatch alarm names: 1 to 255 characters, no control characters.
pub fn alarm_name(field: &str, value: &str) -> Result<(), MalformedEvent> {
    let ok = (1..=255).contains(&value.chars().count()) && !value.chars().any(char::is_control);
    check(ok, field, value, "a CloudWatch alarm name: 1 to 255 characters, no control characters")
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` with a 12-digit account (or none),
/// at most 2048 characters, no whitespace or control characters.
pub fn arn(field: &str, value: &str, service: &str) -> Result<(), MalformedEvent> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok = value.len() <= 2048
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && parts[3].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && (parts[4].is_empty() || is_account_id(parts[4]))
        && !parts[5].is_empty();
    check(ok, field, value, &format!("an ARN of {service} (arn:partition:{service}:region:account:resource)"))
}

/// An AWS account id: 12 digits.
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// The `TargetGroup` dimension of an ELB metric: `targetgroup/<name>/<hex id>`, the name 1 to 32
/// letters, digits or hyphens.
pub fn target_group_dimension(field: &str, value: &str) -> Result<(), MalformedEvent> {
    let mut parts = value.split('/');
    let ok = matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("targetgroup"), Some(name), Some(id), None)
            if (1..=32).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_hexdigit())
    );
    check(ok, field, value, "a target group dimension: targetgroup/<name>/<hex id>")
}

fn check(ok: bool, field: &str, value: &str, rule: &str) -> Result<(), MalformedEvent> {
    if ok {
        return Ok(());
    }
    let shown: String = value.chars().take(80).flat_map(char::escape_default).collect();
    Err(MalformedEvent::new(format!("{field} `{shown}` is not {rule}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_identifiers_when_checked_then_only_documented_formats_pass() {
        type Check = fn(&str, &str) -> Result<(), MalformedEvent>;
        let rows: [(Check, &str, bool); 26] = [
            (instance_id, "i-0a1b2c3d4e5f67890", true),
            (instance_id, "i-0abc1234", true),
            (instance_id, "i-../../etc/passwd\"; DROP", false),
            (instance_id, "i-0A1B2C3D4E5F67890", false),
            (instance_id, "i-0a1b2c3d4e5f6789", false),
            (instance_id, "i-", false),
            (group_name, "web-prod", true),
            (group_name, "web_prod.v2/blue", true),
            (group_name, "web prod", false),
            (group_name, "web:prod", false),
            (group_name, "", false),
            (group_name, &"g".repeat(256), false),
            (db_identifier, "orders-db-replica-1", true),
            (db_identifier, "1orders", false),
            (db_identifier, "orders--db", false),
            (db_identifier, "orders-", false),
            (db_identifier, "orders_db", false),
            (db_identifier, &"d".repeat(64), false),
            (alarm_name, "web-prod-cpu-high", true),
            (alarm_name, "web prod: CPU > 70 %", true),
            (alarm_name, "bad\nname", false),
            (alarm_name, "", false),
            (target_group_dimension, "targetgroup/web-prod/0123456789abcdef", true),
            (target_group_dimension, "targetgroup/web-prod/../../x", false),
            (target_group_dimension, "app/web/0123", false),
            (target_group_dimension, "targetgroup/web_prod/0123", false),
        ];
        for (check, value, valid) in rows {
            assert_eq!(check("field", value).is_ok(), valid, "{value:?}");
        }
    }

    #[test]
    fn given_arns_when_checked_then_service_account_and_shape_count() {
        let rows = [
            ("arn:aws:rds:us-east-1:123456789012:db:orders-db", "rds", true),
            ("arn:aws-us-gov:rds:us-gov-west-1:123456789012:cluster:orders", "rds", true),
            ("arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-prod-cpu-high", "cloudwatch", true),
            ("arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-prod-cpu-high", "rds", false),
            ("arn:aws:rds:us-east-1:12345:db:orders-db", "rds", false),
            ("arn:aws:rds:us-east-1:123456789012:db:orders db", "rds", false),
            ("arn:aws:rds:us-east-1:123456789012:", "rds", false),
            ("not-an-arn", "rds", false),
        ];
        for (value, service, valid) in rows {
            assert_eq!(arn("field", value, service).is_ok(), valid, "{value}");
        }
    }

    #[test]
    fn given_a_hostile_id_when_rejected_then_the_error_names_field_and_rule() {
        let error = instance_id("detail.instance-id", "i-../../etc/passwd\"; DROP").unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed event: detail.instance-id `i-../../etc/passwd\\\"; DROP` is not an EC2 instance id: i- and 8 or 17 lowercase hex digits"
        );
    }
}
