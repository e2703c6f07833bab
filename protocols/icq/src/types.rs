//! Value types carried by several packets: online status, user records, dates.

/// An online status (STATUS_CHANGE, USER_ONLINE, STATUS_UPDATE). Unknown values are
/// kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status(pub u32);

impl Status {
    pub const ONLINE: Status = Status(0x0000_0000);
    pub const AWAY: Status = Status(0x0000_0001);
    pub const DND: Status = Status(0x0000_0011);
    pub const INVISIBLE: Status = Status(0x0000_0100);

    /// A short English name, or the hex value when unknown.
    pub fn name(self) -> String {
        match self {
            Status::ONLINE => "online".into(),
            Status::AWAY => "away".into(),
            Status::DND => "dnd".into(),
            Status::INVISIBLE => "invisible".into(),
            Status(other) => format!("{other:#010x}"),
        }
    }

    /// Parses `online`, `away`, `dnd`, `invisible`.
    pub fn from_name(name: &str) -> Option<Status> {
        match name.to_ascii_lowercase().as_str() {
            "online" => Some(Status::ONLINE),
            "away" => Some(Status::AWAY),
            "dnd" => Some(Status::DND),
            "invisible" => Some(Status::INVISIBLE),
            _ => None,
        }
    }
}

/// A directory entry, as in USER_FOUND and INFO_REPLY.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRecord {
    pub uin: u32,
    pub nick: String,
    pub first: String,
    pub last: String,
    pub email: String,
    /// AUTHORIZE `00`: the user must authorize being added (true); `01`: anyone may
    /// add them (false).
    pub auth_required: bool,
}

/// The fields of EXT_INFO_REPLY after the UIN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtInfo {
    pub city: String,
    /// International telephone prefix; `0xFFFF` when not entered.
    pub country_code: u16,
    /// Normally `0xFE`; `0x9C` when no country was entered.
    pub country_status: u8,
    pub state: String,
    /// `0xFFFF` when not entered.
    pub age: u16,
    /// 0 not specified, 1 female, 2 male.
    pub sex: u8,
    pub phone: String,
    pub homepage: String,
    pub about: String,
}

/// The date of a RECEIVE_MESSAGE. The spec says HOUR is GMT (or local time - 1);
/// this crate treats all fields as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MessageTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
}

impl MessageTime {
    /// The UTC minute holding `secs` seconds since 1970-01-01 (seconds dropped).
    pub fn from_unix_seconds(secs: i64) -> MessageTime {
        let days = secs.div_euclid(86_400);
        let in_day = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        MessageTime {
            year: year.clamp(0, i64::from(u16::MAX)) as u16,
            month: month as u8,
            day: day as u8,
            hour: (in_day / 3600) as u8,
            minute: (in_day % 3600 / 60) as u8,
        }
    }

    /// Seconds since 1970-01-01 UTC, or None when a field is out of range.
    pub fn to_unix_seconds(self) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || !(1..=31).contains(&self.day)
            || self.hour > 23
            || self.minute > 59
        {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let m = i64::from(self.month);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_round_trip() {
        let t = MessageTime::from_unix_seconds(892_944_000 + 13 * 3600 + 37 * 60 + 12);
        assert_eq!(
            t,
            MessageTime {
                year: 1998,
                month: 4,
                day: 19,
                hour: 13,
                minute: 37
            }
        );
        assert_eq!(t.to_unix_seconds(), Some(892_944_000 + 13 * 3600 + 37 * 60));
        assert_eq!(MessageTime::from_unix_seconds(0).to_unix_seconds(), Some(0));
        assert_eq!(MessageTime::default().to_unix_seconds(), None);
    }

    #[test]
    fn status_names() {
        assert_eq!(Status::from_name("Away"), Some(Status::AWAY));
        assert_eq!(Status::DND.name(), "dnd");
        assert_eq!(Status(7).name(), "0x00000007");
    }
}
