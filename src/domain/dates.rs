//! The one rule for date inputs: an RFC 3339 time, or a plain date read in
//! the operation's time zone. A plain date that starts a range means the
//! start of that day; one that ends a range includes that day. An RFC 3339
//! end is exclusive.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::error::{AppError, AppResult};

/// Which end of a half-open range [start, end) a bound is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Start,
    End,
}

/// An IANA time zone name; UTC when absent or empty.
pub fn parse_zone(raw: Option<&str>, field: &str) -> AppResult<chrono_tz::Tz> {
    match raw.map(str::trim).filter(|zone| !zone.is_empty()) {
        Some(name) => name.parse().map_err(|_| {
            AppError::bad_input(field, "is not an IANA time zone, e.g. Europe/Madrid")
        }),
        None => Ok(chrono_tz::UTC),
    }
}

/// One bound of a range, as the instant it stands for.
pub fn parse_bound(
    raw: &str,
    field: &str,
    zone: chrono_tz::Tz,
    side: Side,
) -> AppResult<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        return Ok(instant.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        AppError::bad_input(field, "must be an RFC 3339 time or a date like 2026-01-31")
    })?;
    let date = match side {
        Side::Start => date,
        Side::End => date
            .checked_add_signed(Duration::days(1))
            .ok_or_else(|| AppError::bad_input(field, "is out of range"))?,
    };
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| AppError::bad_input(field, "is out of range"))?;
    // A day that starts in a DST gap begins at the first valid instant.
    let local = zone
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(|| AppError::bad_input(field, "does not exist in this time zone"))?;
    Ok(local.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn plain_dates_cover_whole_days_in_the_zone() {
        let madrid = parse_zone(Some("Europe/Madrid"), "timeZone").unwrap();
        assert_eq!(
            parse_bound("2026-01-01", "from", madrid, Side::Start).unwrap(),
            utc("2025-12-31T23:00:00Z")
        );
        assert_eq!(
            parse_bound("2026-01-31", "to", madrid, Side::End).unwrap(),
            utc("2026-01-31T23:00:00Z")
        );
        assert_eq!(
            parse_bound("2026-01-31", "to", chrono_tz::UTC, Side::End).unwrap(),
            utc("2026-02-01T00:00:00Z")
        );
    }

    #[test]
    fn rfc3339_times_stand_for_themselves_and_errors_name_the_field() {
        assert_eq!(
            parse_bound("2026-01-31T10:00:00+01:00", "to", chrono_tz::UTC, Side::End).unwrap(),
            utc("2026-01-31T09:00:00Z")
        );
        let error = parse_bound("31/01/2026", "createdFrom", chrono_tz::UTC, Side::Start)
            .err()
            .unwrap();
        assert_eq!(
            format!("{error:?}"),
            "BAD_USER_INPUT(createdFrom: must be an RFC 3339 time or a date like 2026-01-31)"
        );
        assert!(parse_zone(Some("Mars/Olympus"), "filter.timeZone").is_err());
    }
}
