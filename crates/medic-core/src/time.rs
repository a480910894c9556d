//! Timestamps as seconds since the Unix epoch, and a parser for the RFC 3339 form EventBridge uses.
//! The formats are simple and fixed, so a small parser avoids pulling a date crate into every lambda.

/// Seconds since 1970-01-01T00:00:00Z.
pub type EpochSeconds = i64;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM|±HHMM)` into epoch seconds (fractions dropped).
/// Accepts the colon-less offset that CloudWatch's direct alarm actions send (`+0000`).
pub fn parse_timestamp(text: &str) -> Option<EpochSeconds> {
    parse_timestamp_millis(text).map(|millis| millis.div_euclid(1000))
}

/// Like [`parse_timestamp`], in milliseconds (digits past the third fraction digit dropped).
pub fn parse_timestamp_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    if bytes[10] != b'T' && bytes[10] != b't' && bytes[10] != b' ' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first_three = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = first_three.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 6 {
                return None;
            }
            let hours: i64 = digits[0..2].parse().ok()?;
            let minutes: i64 = digits[2..4].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds) * 1000 + millis)
}

/// Formats epoch seconds as RFC 3339 UTC (`2026-11-21T09:15:02Z`).
pub fn format_timestamp(epoch: EpochSeconds) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, (secs % 3600) / 60, secs % 60)
}

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_eventbridge_and_alarm_timestamps_when_parsed_then_epoch_seconds_agree() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-11-21T09:15:02Z", Some(1_795_252_502)),
            ("2026-11-21T09:15:02.118+0000", Some(1_795_252_502)),
            ("2026-11-21T10:15:02+01:00", Some(1_795_252_502)),
            ("2024-02-29T23:59:59Z", Some(1_709_251_199)),
            ("2026-11-21", None),
            ("2026-13-21T09:15:02Z", None),
            ("2026-11-21T09:15:02", None),
            ("2026-11-21T09:15:02.Z", None),
            ("not a time at all, not at all", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_timestamp(text), expected, "{text}");
        }
    }

    #[test]
    fn given_fractions_when_parsed_in_millis_then_kept_to_the_millisecond() {
        assert_eq!(parse_timestamp_millis("2026-11-21T09:15:02.118+0000"), Some(1_795_252_502_118));
        assert_eq!(parse_timestamp_millis("2026-11-21T09:15:02.1Z"), Some(1_795_252_502_100));
        assert_eq!(parse_timestamp_millis("2026-11-21T09:15:02.123456Z"), Some(1_795_252_502_123));
        assert_eq!(parse_timestamp_millis("1969-12-31T23:59:59.500Z"), Some(-500));
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.500Z"), Some(-1));
    }

    #[test]
    fn given_epoch_seconds_when_formatted_then_round_trips() {
        for epoch in [0, 1_709_251_199, 1_795_252_502, 4_102_444_800] {
            assert_eq!(parse_timestamp(&format_timestamp(epoch)), Some(epoch));
        }
        assert_eq!(format_timestamp(1_795_252_502), "2026-11-21T09:15:02Z");
    }
}
