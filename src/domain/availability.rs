//! A tutor's availability rules: the JSON shape clients send (`AvailabilityRulesDto`) and the
//! parsed, always-valid form the scheduler works with (`AvailabilityRules`).
//!
//! Everything here is wall-clock: windows are minutes since local midnight in the tutor's zone.
//! Turning them into real instants (and dealing with DST) is `slots`' job.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use super::{InvalidValue, TimeZone};

/// Minutes in a calendar day; a window may end at this value ("24:00").
pub const MINUTES_PER_DAY: u16 = 1440;
/// Most windows one weekday (or one exception date) may have.
pub const MAX_WINDOWS_PER_DAY: usize = 48;
/// Most exception dates one set of rules may have.
pub const MAX_EXCEPTIONS: usize = 1000;

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Availability rules exactly as the client sends and receives them (SPEC "Availability rules").
/// Nothing is checked here; `AvailabilityRules::parse` does that and reports every problem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AvailabilityRulesDto {
    /// IANA zone name; absent means "keep the tutor's current zone".
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub weekly: Vec<WeeklyWindowDto>,
    #[serde(default)]
    pub exceptions: Vec<ExceptionDto>,
    /// Absent means 30.
    #[serde(default)]
    pub slot_minutes: Option<i64>,
    /// Absent means 30.
    #[serde(default)]
    pub min_duration_minutes: Option<i64>,
    /// Absent means 180.
    #[serde(default)]
    pub max_duration_minutes: Option<i64>,
    /// Absent means 60.
    #[serde(default)]
    pub min_notice_minutes: Option<i64>,
    /// Absent means 90.
    #[serde(default)]
    pub horizon_days: Option<i64>,
    /// Absent means 0.
    #[serde(default)]
    pub buffer_minutes: Option<i64>,
}

/// One recurring window: `{"weekday": "monday", "start": "09:00", "end": "12:00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct WeeklyWindowDto {
    pub weekday: String,
    pub start: String,
    pub end: String,
}

/// The windows of one date, replacing that date's weekly windows (empty = day blocked).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ExceptionDto {
    pub date: String,
    #[serde(default)]
    pub windows: Vec<WindowDto>,
}

/// A window inside an exception: `{"start": "14:00", "end": "18:00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct WindowDto {
    pub start: String,
    pub end: String,
}

/// A wall-clock window of one day, in minutes since local midnight: `start < end`,
/// `start` in `0..1440`, `end` in `1..=1440` (1440 is "24:00", the next midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    start: u16,
    end: u16,
}

impl Window {
    /// A window from `start_minute` to `end_minute` (minutes since local midnight).
    pub fn new(start_minute: u16, end_minute: u16) -> Result<Self, InvalidValue> {
        if start_minute >= MINUTES_PER_DAY || end_minute > MINUTES_PER_DAY {
            return Err(InvalidValue::new(
                "a window must lie within 00:00 and 24:00",
            ));
        }
        if end_minute <= start_minute {
            return Err(InvalidValue::new("end must be after start"));
        }
        Ok(Self {
            start: start_minute,
            end: end_minute,
        })
    }

    /// Minutes since local midnight when the window opens.
    pub fn start_minute(self) -> u16 {
        self.start
    }

    /// Minutes since local midnight when the window closes (1440 = next midnight).
    pub fn end_minute(self) -> u16 {
        self.end
    }

    fn overlaps(self, other: Self) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Valid availability rules: every window well-formed and non-overlapping within its day, every
/// number in range. Built only by `parse` (from client input) or `empty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityRules {
    timezone: TimeZone,
    /// Indexed by `Weekday::num_days_from_monday`, each sorted by start.
    weekly: [Vec<Window>; 7],
    /// Each date's windows sorted by start.
    exceptions: BTreeMap<NaiveDate, Vec<Window>>,
    slot_minutes: u32,
    min_duration_minutes: u32,
    max_duration_minutes: u32,
    min_notice_minutes: u32,
    horizon_days: u32,
    buffer_minutes: u32,
}

/// Field path and client-safe message of one problem found while parsing.
type FieldError = (String, String);

impl AvailabilityRules {
    /// No windows at all (nothing bookable) and the default numbers.
    pub fn empty(timezone: TimeZone) -> Self {
        Self {
            timezone,
            weekly: Default::default(),
            exceptions: BTreeMap::new(),
            slot_minutes: SLOT.default,
            min_duration_minutes: MIN_DURATION.default,
            max_duration_minutes: MAX_DURATION.default,
            min_notice_minutes: MIN_NOTICE.default,
            horizon_days: HORIZON.default,
            buffer_minutes: BUFFER.default,
        }
    }

    /// Validates client input. `default_timezone` is used when the body names no zone (the
    /// tutor's profile zone). On failure returns every problem found, as
    /// `(field path, message)`, e.g. `("weekly[2].end", "must be after start (09:00)")`.
    pub fn parse(
        dto: &AvailabilityRulesDto,
        default_timezone: TimeZone,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();

        let timezone = match &dto.timezone {
            None => Some(default_timezone),
            Some(raw) => TimeZone::parse(raw)
                .map_err(|e| errors.push(("timezone".to_owned(), e.0)))
                .ok(),
        };
        let weekly = parse_weekly(&dto.weekly, &mut errors);
        let exceptions = parse_exceptions(&dto.exceptions, &mut errors);
        let numbers = parse_numbers(dto, &mut errors);

        match (timezone, numbers) {
            (Some(timezone), Some(numbers)) if errors.is_empty() => Ok(Self {
                timezone,
                weekly,
                exceptions,
                slot_minutes: numbers.slot,
                min_duration_minutes: numbers.min_duration,
                max_duration_minutes: numbers.max_duration,
                min_notice_minutes: numbers.min_notice,
                horizon_days: numbers.horizon_days,
                buffer_minutes: numbers.buffer,
            }),
            _ => Err(errors),
        }
    }

    /// The canonical JSON form: weekly windows sorted by weekday then start, times `"HH:MM"`
    /// (end of day as `"24:00"`), dates `"YYYY-MM-DD"`, every field present.
    pub fn to_dto(&self) -> AvailabilityRulesDto {
        let weekly = WEEKDAYS
            .iter()
            .flat_map(|&day| {
                self.weekly(day).iter().map(move |w| WeeklyWindowDto {
                    weekday: weekday_name(day).to_owned(),
                    start: format_clock(w.start),
                    end: format_clock(w.end),
                })
            })
            .collect();
        let exceptions = self
            .exceptions
            .iter()
            .map(|(date, windows)| ExceptionDto {
                date: date.format("%Y-%m-%d").to_string(),
                windows: windows
                    .iter()
                    .map(|w| WindowDto {
                        start: format_clock(w.start),
                        end: format_clock(w.end),
                    })
                    .collect(),
            })
            .collect();
        AvailabilityRulesDto {
            timezone: Some(self.timezone.name().to_owned()),
            weekly,
            exceptions,
            slot_minutes: Some(i64::from(self.slot_minutes)),
            min_duration_minutes: Some(i64::from(self.min_duration_minutes)),
            max_duration_minutes: Some(i64::from(self.max_duration_minutes)),
            min_notice_minutes: Some(i64::from(self.min_notice_minutes)),
            horizon_days: Some(i64::from(self.horizon_days)),
            buffer_minutes: Some(i64::from(self.buffer_minutes)),
        }
    }

    /// The same rules in another zone (the profile's zone and the rules' zone are one value).
    pub fn with_timezone(self, timezone: TimeZone) -> Self {
        Self { timezone, ..self }
    }

    /// The zone the windows are written in.
    pub fn timezone(&self) -> TimeZone {
        self.timezone
    }

    /// The recurring windows of `weekday`, sorted by start.
    pub fn weekly(&self, weekday: Weekday) -> &[Window] {
        &self.weekly[weekday.num_days_from_monday() as usize]
    }

    /// The exception dates and their windows (each sorted by start).
    pub fn exceptions(&self) -> &BTreeMap<NaiveDate, Vec<Window>> {
        &self.exceptions
    }

    /// The windows that apply on `date`: its exception if it has one, else its weekday's.
    pub fn windows_on(&self, date: NaiveDate) -> &[Window] {
        match self.exceptions.get(&date) {
            Some(windows) => windows,
            None => self.weekly(chrono::Datelike::weekday(&date)),
        }
    }

    /// Step of the start grid, in minutes (5..=720).
    pub fn slot_minutes(&self) -> u32 {
        self.slot_minutes
    }

    /// Shortest bookable session, a multiple of `slot_minutes`.
    pub fn min_duration_minutes(&self) -> u32 {
        self.min_duration_minutes
    }

    /// Longest bookable session, a multiple of `slot_minutes`, at most 1440.
    pub fn max_duration_minutes(&self) -> u32 {
        self.max_duration_minutes
    }

    /// How long before its start a session must be booked.
    pub fn min_notice_minutes(&self) -> u32 {
        self.min_notice_minutes
    }

    /// How far ahead a session may start, in days of 24 real hours.
    pub fn horizon_days(&self) -> u32 {
        self.horizon_days
    }

    /// Free time kept before and after every session.
    pub fn buffer_minutes(&self) -> u32 {
        self.buffer_minutes
    }

    /// Whether a session may last `minutes`: a multiple of `slot_minutes` within
    /// `[min_duration_minutes, max_duration_minutes]`.
    pub fn allows_duration(&self, minutes: u32) -> bool {
        minutes.is_multiple_of(self.slot_minutes)
            && (self.min_duration_minutes..=self.max_duration_minutes).contains(&minutes)
    }
}

fn parse_weekly(raw: &[WeeklyWindowDto], errors: &mut Vec<FieldError>) -> [Vec<Window>; 7] {
    // (index in the request, window) per weekday, so overlap messages can name both entries.
    let mut per_day: [Vec<(usize, Window)>; 7] = Default::default();
    for (i, dto) in raw.iter().enumerate() {
        let path = format!("weekly[{i}]");
        let weekday = parse_weekday(&dto.weekday);
        if weekday.is_none() {
            errors.push((
                format!("{path}.weekday"),
                "must be a weekday name, \"monday\" to \"sunday\"".to_owned(),
            ));
        }
        let window = parse_window(&dto.start, &dto.end, &path, errors);
        if let (Some(day), Some(window)) = (weekday, window) {
            per_day[day.num_days_from_monday() as usize].push((i, window));
        }
    }
    let mut weekly: [Vec<Window>; 7] = Default::default();
    for (day, entries) in WEEKDAYS.iter().zip(per_day) {
        let name = weekday_name(*day);
        if entries.len() > MAX_WINDOWS_PER_DAY {
            errors.push((
                "weekly".to_owned(),
                format!(
                    "at most {MAX_WINDOWS_PER_DAY} windows per weekday ({name} has {})",
                    entries.len()
                ),
            ));
        }
        weekly[day.num_days_from_monday() as usize] =
            sorted_without_overlap(entries, |i| format!("weekly[{i}]"), errors);
    }
    weekly
}

fn parse_exceptions(
    raw: &[ExceptionDto],
    errors: &mut Vec<FieldError>,
) -> BTreeMap<NaiveDate, Vec<Window>> {
    if raw.len() > MAX_EXCEPTIONS {
        errors.push((
            "exceptions".to_owned(),
            format!("at most {MAX_EXCEPTIONS} exceptions ({} given)", raw.len()),
        ));
    }
    // The request index of each date, to name the first entry when one repeats.
    let mut first_index: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    let mut exceptions = BTreeMap::new();
    for (i, dto) in raw.iter().enumerate() {
        let path = format!("exceptions[{i}]");
        let date = parse_date(&dto.date);
        match date {
            None => errors.push((
                format!("{path}.date"),
                "must be a date \"YYYY-MM-DD\"".to_owned(),
            )),
            Some(date) => {
                if let Some(first) = first_index.get(&date) {
                    errors.push((
                        format!("{path}.date"),
                        format!("repeats exceptions[{first}].date; each date may appear once"),
                    ));
                } else {
                    first_index.insert(date, i);
                }
            }
        }
        if dto.windows.len() > MAX_WINDOWS_PER_DAY {
            errors.push((
                format!("{path}.windows"),
                format!(
                    "at most {MAX_WINDOWS_PER_DAY} windows per date ({} given)",
                    dto.windows.len()
                ),
            ));
        }
        let entries = dto
            .windows
            .iter()
            .enumerate()
            .filter_map(|(j, w)| {
                parse_window(&w.start, &w.end, &format!("{path}.windows[{j}]"), errors)
                    .map(|window| (j, window))
            })
            .collect();
        let windows = sorted_without_overlap(entries, |j| format!("{path}.windows[{j}]"), errors);
        if let Some(date) = date {
            exceptions.entry(date).or_insert(windows);
        }
    }
    exceptions
}

/// Sorts one day's windows by start and reports each window that overlaps an earlier one
/// (touching is fine: that is how a stretch continues).
fn sorted_without_overlap(
    mut entries: Vec<(usize, Window)>,
    path_of: impl Fn(usize) -> String,
    errors: &mut Vec<FieldError>,
) -> Vec<Window> {
    entries.sort_by_key(|&(i, w)| (w.start, i));
    // Sorted by start, a window overlaps some earlier one exactly when it overlaps the earlier
    // window that reaches furthest.
    let mut furthest: Option<(usize, Window)> = None;
    for &(i, window) in &entries {
        match furthest {
            Some((j, earlier)) if earlier.overlaps(window) => errors.push((
                format!("{}.start", path_of(i)),
                format!(
                    "overlaps {} ({}–{})",
                    path_of(j),
                    format_clock(earlier.start),
                    format_clock(earlier.end)
                ),
            )),
            _ => {}
        }
        if furthest.is_none_or(|(_, earlier)| window.end > earlier.end) {
            furthest = Some((i, window));
        }
    }
    entries.into_iter().map(|(_, w)| w).collect()
}

fn parse_window(
    start: &str,
    end: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Window> {
    let start_minute = parse_clock(start).filter(|&m| m < MINUTES_PER_DAY);
    if start_minute.is_none() {
        errors.push((
            format!("{path}.start"),
            "must be a time \"HH:MM\" from 00:00 to 23:59".to_owned(),
        ));
    }
    let end_minute = parse_clock(end);
    if end_minute.is_none() {
        errors.push((
            format!("{path}.end"),
            "must be a time \"HH:MM\" from 00:00 to 24:00".to_owned(),
        ));
    }
    let (start_minute, end_minute) = (start_minute?, end_minute?);
    if end_minute <= start_minute {
        errors.push((
            format!("{path}.end"),
            format!("must be after start ({})", format_clock(start_minute)),
        ));
        return None;
    }
    Window::new(start_minute, end_minute).ok()
}

/// `"HH:MM"` (exactly two digits each) to minutes since midnight; `"24:00"` gives 1440.
fn parse_clock(raw: &str) -> Option<u16> {
    let &[h1, h2, b':', m1, m2] = raw.as_bytes() else {
        return None;
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
    let hours = digit(h1)? * 10 + digit(h2)?;
    let minutes = digit(m1)? * 10 + digit(m2)?;
    match (hours, minutes) {
        (0..=23, 0..=59) | (24, 0) => Some(hours * 60 + minutes),
        _ => None,
    }
}

fn format_clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn parse_weekday(raw: &str) -> Option<Weekday> {
    WEEKDAYS
        .into_iter()
        .find(|&day| weekday_name(day).eq_ignore_ascii_case(raw))
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// Strictly `YYYY-MM-DD`: chrono alone would also take `2026-1-5`.
fn parse_date(raw: &str) -> Option<NaiveDate> {
    let shape_ok = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// Where a number of the rules lives, its default when absent, and its allowed range.
struct Limit {
    field: &'static str,
    default: u32,
    min: u32,
    max: u32,
}

const SLOT: Limit = Limit {
    field: "slot_minutes",
    default: 30,
    min: 5,
    max: 720,
};
// Durations are further tied to the slot in `parse_numbers`.
const MIN_DURATION: Limit = Limit {
    field: "min_duration_minutes",
    default: 30,
    min: 1,
    max: 1440,
};
const MAX_DURATION: Limit = Limit {
    field: "max_duration_minutes",
    default: 180,
    min: 1,
    max: 1440,
};
const MIN_NOTICE: Limit = Limit {
    field: "min_notice_minutes",
    default: 60,
    min: 0,
    max: 525_600,
};
const HORIZON: Limit = Limit {
    field: "horizon_days",
    default: 90,
    min: 1,
    max: 730,
};
const BUFFER: Limit = Limit {
    field: "buffer_minutes",
    default: 0,
    min: 0,
    max: 1440,
};

impl Limit {
    fn parse(&self, raw: Option<i64>, errors: &mut Vec<FieldError>) -> Option<u32> {
        self.parse_or(raw, self.default, errors)
    }

    /// As [`Limit::parse`], with another default.
    fn parse_or(
        &self,
        raw: Option<i64>,
        default: u32,
        errors: &mut Vec<FieldError>,
    ) -> Option<u32> {
        let value = raw.unwrap_or(i64::from(default));
        let parsed = u32::try_from(value)
            .ok()
            .filter(|v| (self.min..=self.max).contains(v));
        if parsed.is_none() {
            errors.push((
                self.field.to_owned(),
                format!("must be between {} and {}", self.min, self.max),
            ));
        }
        parsed
    }
}

struct Numbers {
    slot: u32,
    min_duration: u32,
    max_duration: u32,
    min_notice: u32,
    horizon_days: u32,
    buffer: u32,
}

fn parse_numbers(dto: &AvailabilityRulesDto, errors: &mut Vec<FieldError>) -> Option<Numbers> {
    let slot = SLOT.parse(dto.slot_minutes, errors);
    // Absent durations follow the slot: the defaults rounded to its multiples, so that a client
    // setting only `slot_minutes` is not refused over fields it never sent.
    let slot_or_default = slot.unwrap_or(SLOT.default);
    let min_default = MIN_DURATION.default.div_ceil(slot_or_default) * slot_or_default;
    let max_default = (MAX_DURATION.default / slot_or_default * slot_or_default).max(min_default);
    let min_duration = MIN_DURATION.parse_or(dto.min_duration_minutes, min_default, errors);
    // Never below a minimum that was given.
    let max_default = max_default.max(min_duration.unwrap_or(0));
    let max_duration = MAX_DURATION.parse_or(dto.max_duration_minutes, max_default, errors);
    let min_notice = MIN_NOTICE.parse(dto.min_notice_minutes, errors);
    let horizon_days = HORIZON.parse(dto.horizon_days, errors);
    let buffer = BUFFER.parse(dto.buffer_minutes, errors);

    // The relations between durations and the slot are only checked once each is in range.
    let errors_before = errors.len();
    if let (Some(slot), Some(min)) = (slot, min_duration)
        && !(min >= slot && min.is_multiple_of(slot))
    {
        errors.push((
            MIN_DURATION.field.to_owned(),
            format!("must be a positive multiple of slot_minutes ({slot})"),
        ));
    }
    if let (Some(slot), Some(max)) = (slot, max_duration)
        && !max.is_multiple_of(slot)
    {
        errors.push((
            MAX_DURATION.field.to_owned(),
            format!("must be a multiple of slot_minutes ({slot})"),
        ));
    }
    if let (Some(min), Some(max)) = (min_duration, max_duration)
        && max < min
    {
        errors.push((
            MAX_DURATION.field.to_owned(),
            format!("must be at least min_duration_minutes ({min})"),
        ));
    }
    if errors.len() > errors_before {
        return None;
    }

    Some(Numbers {
        slot: slot?,
        min_duration: min_duration?,
        max_duration: max_duration?,
        min_notice: min_notice?,
        horizon_days: horizon_days?,
        buffer: buffer?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(day: &str, start: &str, end: &str) -> WeeklyWindowDto {
        WeeklyWindowDto {
            weekday: day.to_owned(),
            start: start.to_owned(),
            end: end.to_owned(),
        }
    }

    fn window(start: &str, end: &str) -> WindowDto {
        WindowDto {
            start: start.to_owned(),
            end: end.to_owned(),
        }
    }

    fn exception(date: &str, windows: Vec<WindowDto>) -> ExceptionDto {
        ExceptionDto {
            date: date.to_owned(),
            windows,
        }
    }

    fn spec_example() -> AvailabilityRulesDto {
        AvailabilityRulesDto {
            timezone: Some("America/Sao_Paulo".to_owned()),
            weekly: vec![weekly("monday", "09:00", "12:00")],
            exceptions: vec![
                exception("2026-12-24", vec![]),
                exception("2026-12-26", vec![window("14:00", "18:00")]),
            ],
            slot_minutes: Some(30),
            min_duration_minutes: Some(30),
            max_duration_minutes: Some(180),
            min_notice_minutes: Some(60),
            horizon_days: Some(90),
            buffer_minutes: Some(0),
        }
    }

    fn errors_of(dto: &AvailabilityRulesDto) -> Vec<FieldError> {
        match AvailabilityRules::parse(dto, TimeZone::UTC) {
            Ok(rules) => panic!("expected errors, parsed {rules:?}"),
            Err(errors) => errors,
        }
    }

    fn fields_of(dto: &AvailabilityRulesDto) -> Vec<String> {
        errors_of(dto).into_iter().map(|(field, _)| field).collect()
    }

    fn parsed(dto: &AvailabilityRulesDto) -> AvailabilityRules {
        AvailabilityRules::parse(dto, TimeZone::UTC).expect("valid rules")
    }

    fn date(raw: &str) -> NaiveDate {
        parse_date(raw).expect("test date")
    }

    #[test]
    fn the_spec_example_parses_and_round_trips() {
        let rules = parsed(&spec_example());
        assert_eq!(rules.timezone().name(), "America/Sao_Paulo");
        assert_eq!(
            rules.weekly(Weekday::Mon),
            &[Window {
                start: 540,
                end: 720
            }]
        );
        assert!(rules.windows_on(date("2026-12-24")).is_empty());
        assert_eq!(
            rules.windows_on(date("2026-12-26")),
            &[Window {
                start: 840,
                end: 1080
            }]
        );
        assert_eq!(rules.to_dto(), spec_example());
    }

    #[test]
    fn absent_fields_take_the_defaults_and_the_given_zone() {
        let sao_paulo = TimeZone::parse("America/Sao_Paulo").expect("zone");
        let rules = AvailabilityRules::parse(&AvailabilityRulesDto::default(), sao_paulo)
            .expect("empty rules are valid");
        assert_eq!(rules, AvailabilityRules::empty(sao_paulo));
        assert_eq!(
            (
                rules.slot_minutes(),
                rules.min_duration_minutes(),
                rules.max_duration_minutes(),
                rules.min_notice_minutes(),
                rules.horizon_days(),
                rules.buffer_minutes()
            ),
            (30, 30, 180, 60, 90, 0)
        );
    }

    #[test]
    fn absent_durations_follow_the_slot() {
        let cases = [
            (5, (30, 180)),
            (7, (35, 175)),
            (45, (45, 180)),
            (60, (60, 180)),
            (120, (120, 120)),
            (720, (720, 720)),
        ];
        for (slot, durations) in cases {
            let dto = AvailabilityRulesDto {
                slot_minutes: Some(slot),
                ..AvailabilityRulesDto::default()
            };
            let rules = parsed(&dto);
            assert_eq!(
                (rules.min_duration_minutes(), rules.max_duration_minutes()),
                durations,
                "slot {slot}"
            );
        }
        // One given, the other follows the slot, and the maximum the minimum.
        let dto = AvailabilityRulesDto {
            slot_minutes: Some(60),
            max_duration_minutes: Some(240),
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(parsed(&dto).min_duration_minutes(), 60);
        let dto = AvailabilityRulesDto {
            slot_minutes: Some(60),
            min_duration_minutes: Some(240),
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(parsed(&dto).max_duration_minutes(), 240);
    }

    #[test]
    fn to_dto_is_canonical() {
        let dto = AvailabilityRulesDto {
            timezone: None,
            weekly: vec![
                weekly("SUNDAY", "20:00", "24:00"),
                weekly("monday", "13:00", "14:00"),
                weekly("Monday", "09:00", "10:00"),
            ],
            exceptions: vec![
                exception(
                    "2027-01-02",
                    vec![window("10:00", "11:00"), window("08:00", "09:00")],
                ),
                exception("2026-12-31", vec![]),
            ],
            ..AvailabilityRulesDto::default()
        };
        let out = parsed(&dto).to_dto();
        assert_eq!(out.timezone.as_deref(), Some("UTC"));
        assert_eq!(
            out.weekly,
            vec![
                weekly("monday", "09:00", "10:00"),
                weekly("monday", "13:00", "14:00"),
                weekly("sunday", "20:00", "24:00"),
            ]
        );
        assert_eq!(
            out.exceptions,
            vec![
                exception("2026-12-31", vec![]),
                exception(
                    "2027-01-02",
                    vec![window("08:00", "09:00"), window("10:00", "11:00")]
                ),
            ]
        );
        assert_eq!(parsed(&out), parsed(&dto));
    }

    #[test]
    fn with_timezone_changes_only_the_zone() {
        let rules = parsed(&spec_example());
        let kolkata = TimeZone::parse("Asia/Kolkata").expect("zone");
        let moved = rules.clone().with_timezone(kolkata);
        assert_eq!(moved.timezone(), kolkata);
        assert_eq!(moved.weekly(Weekday::Mon), rules.weekly(Weekday::Mon));
    }

    #[test]
    fn an_unknown_timezone_is_refused() {
        let dto = AvailabilityRulesDto {
            timezone: Some("Mars/Olympus".to_owned()),
            ..spec_example()
        };
        assert_eq!(fields_of(&dto), ["timezone"]);
    }

    #[test]
    fn weekday_names_are_case_insensitive_and_nothing_else() {
        assert_eq!(parse_weekday("Wednesday"), Some(Weekday::Wed));
        assert_eq!(parse_weekday("SUNDAY"), Some(Weekday::Sun));
        for bad in ["mon", "", "funday", " monday"] {
            let dto = AvailabilityRulesDto {
                weekly: vec![
                    weekly("monday", "09:00", "10:00"),
                    weekly(bad, "09:00", "10:00"),
                ],
                ..AvailabilityRulesDto::default()
            };
            assert_eq!(fields_of(&dto), ["weekly[1].weekday"], "{bad:?}");
        }
    }

    #[test]
    fn clock_times_must_be_strict_hh_mm() {
        assert_eq!(parse_clock("00:00"), Some(0));
        assert_eq!(parse_clock("23:59"), Some(1439));
        assert_eq!(parse_clock("24:00"), Some(1440));
        for bad in [
            "24:01",
            "25:00",
            "9:00",
            "09:0",
            "09:60",
            "0900",
            "09-00",
            "",
            "+9:00",
            "09:00:00",
            "٠٩:٠٠",
        ] {
            assert_eq!(parse_clock(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_start_of_24_00_is_refused_but_an_end_of_24_00_is_fine() {
        let dto = AvailabilityRulesDto {
            weekly: vec![
                weekly("monday", "24:00", "24:00"),
                weekly("tuesday", "22:00", "24:00"),
            ],
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(fields_of(&dto), ["weekly[0].start"]);
    }

    #[test]
    fn bad_times_are_reported_on_their_own_fields() {
        let dto = AvailabilityRulesDto {
            weekly: vec![
                weekly("monday", "9", "10:00"),
                weekly("monday", "11:00", "99:99"),
            ],
            exceptions: vec![exception(
                "2026-12-26",
                vec![window("08:00", "09:00"), window("x", "y")],
            )],
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(
            fields_of(&dto),
            [
                "weekly[0].start",
                "weekly[1].end",
                "exceptions[0].windows[1].start",
                "exceptions[0].windows[1].end"
            ]
        );
    }

    #[test]
    fn end_must_be_after_start() {
        let dto = AvailabilityRulesDto {
            weekly: vec![
                weekly("monday", "09:00", "09:00"),
                weekly("tuesday", "10:00", "09:00"),
                weekly("wednesday", "10:00", "00:00"),
            ],
            exceptions: vec![exception("2026-12-26", vec![window("14:00", "13:59")])],
            ..AvailabilityRulesDto::default()
        };
        let errors = errors_of(&dto);
        let fields: Vec<_> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "weekly[0].end",
                "weekly[1].end",
                "weekly[2].end",
                "exceptions[0].windows[0].end"
            ]
        );
        assert_eq!(errors[1].1, "must be after start (10:00)");
    }

    #[test]
    fn windows_of_one_weekday_must_not_overlap_but_may_touch() {
        let ok = AvailabilityRulesDto {
            weekly: vec![
                weekly("monday", "09:00", "12:00"),
                weekly("monday", "12:00", "13:00"),
                weekly("tuesday", "11:00", "14:00"),
            ],
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(parsed(&ok).weekly(Weekday::Mon).len(), 2);

        let dto = AvailabilityRulesDto {
            weekly: vec![
                weekly("monday", "09:00", "18:00"),
                weekly("monday", "12:00", "13:00"),
                weekly("tuesday", "09:00", "10:00"),
                weekly("monday", "17:00", "19:00"),
            ],
            ..AvailabilityRulesDto::default()
        };
        let errors = errors_of(&dto);
        assert_eq!(
            errors,
            [
                (
                    "weekly[1].start".to_owned(),
                    "overlaps weekly[0] (09:00–18:00)".to_owned()
                ),
                (
                    "weekly[3].start".to_owned(),
                    "overlaps weekly[0] (09:00–18:00)".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn windows_of_one_exception_date_must_not_overlap() {
        let dto = AvailabilityRulesDto {
            exceptions: vec![
                exception(
                    "2026-12-25",
                    vec![window("10:00", "11:00"), window("11:00", "12:00")],
                ),
                exception(
                    "2026-12-26",
                    vec![window("10:00", "12:00"), window("08:00", "10:30")],
                ),
            ],
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(fields_of(&dto), ["exceptions[1].windows[0].start"]);
    }

    #[test]
    fn exception_dates_must_be_valid_and_unique() {
        let dto = AvailabilityRulesDto {
            exceptions: vec![
                exception("2026-12-24", vec![]),
                exception("2026-12-32", vec![]),
                exception("2026-1-05", vec![]),
                exception("2026-12-24", vec![window("10:00", "11:00")]),
                exception("24/12/2026", vec![]),
            ],
            ..AvailabilityRulesDto::default()
        };
        let errors = errors_of(&dto);
        let fields: Vec<_> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "exceptions[1].date",
                "exceptions[2].date",
                "exceptions[3].date",
                "exceptions[4].date"
            ]
        );
        assert_eq!(
            errors[2].1,
            "repeats exceptions[0].date; each date may appear once"
        );
    }

    #[test]
    fn at_most_48_windows_per_weekday_or_date() {
        let windows_of = |n: usize| -> Vec<(String, String)> {
            (0..n)
                .map(|i| {
                    (
                        format_clock(i as u16 * 20),
                        format_clock(i as u16 * 20 + 10),
                    )
                })
                .collect()
        };
        let monday = |n| {
            windows_of(n)
                .into_iter()
                .map(|(s, e)| weekly("monday", &s, &e))
                .collect::<Vec<_>>()
        };
        let on_date = |n| {
            windows_of(n)
                .into_iter()
                .map(|(s, e)| window(&s, &e))
                .collect::<Vec<_>>()
        };
        let ok = AvailabilityRulesDto {
            weekly: monday(48),
            exceptions: vec![exception("2026-12-24", on_date(48))],
            ..AvailabilityRulesDto::default()
        };
        assert!(AvailabilityRules::parse(&ok, TimeZone::UTC).is_ok());
        let too_many = AvailabilityRulesDto {
            weekly: monday(49),
            exceptions: vec![exception("2026-12-24", on_date(49))],
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(fields_of(&too_many), ["weekly", "exceptions[0].windows"]);
    }

    #[test]
    fn at_most_1000_exceptions() {
        let dates = |n: usize| -> Vec<ExceptionDto> {
            let first = date("2026-01-01");
            (0..n)
                .map(|i| {
                    let day = first + chrono::Days::new(i as u64);
                    exception(&day.format("%Y-%m-%d").to_string(), vec![])
                })
                .collect()
        };
        let ok = AvailabilityRulesDto {
            exceptions: dates(1000),
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(parsed(&ok).exceptions().len(), 1000);
        let too_many = AvailabilityRulesDto {
            exceptions: dates(1001),
            ..AvailabilityRulesDto::default()
        };
        assert_eq!(fields_of(&too_many), ["exceptions"]);
    }

    fn with_numbers(
        slot: i64,
        min: i64,
        max: i64,
        notice: i64,
        horizon: i64,
        buffer: i64,
    ) -> AvailabilityRulesDto {
        AvailabilityRulesDto {
            slot_minutes: Some(slot),
            min_duration_minutes: Some(min),
            max_duration_minutes: Some(max),
            min_notice_minutes: Some(notice),
            horizon_days: Some(horizon),
            buffer_minutes: Some(buffer),
            ..AvailabilityRulesDto::default()
        }
    }

    #[test]
    fn numbers_at_their_limits_are_accepted() {
        for dto in [
            with_numbers(5, 5, 1440, 0, 1, 0),
            with_numbers(720, 720, 1440, 525_600, 730, 1440),
            with_numbers(15, 45, 45, 60, 90, 10),
        ] {
            assert!(
                AvailabilityRules::parse(&dto, TimeZone::UTC).is_ok(),
                "{dto:?}"
            );
        }
    }

    #[test]
    fn slot_minutes_must_be_between_5_and_720() {
        for slot in [4, 721, 0, -30, i64::MAX] {
            let dto = with_numbers(slot, 30, 180, 60, 90, 0);
            assert_eq!(fields_of(&dto), ["slot_minutes"], "{slot}");
        }
    }

    #[test]
    fn min_duration_must_be_a_multiple_of_the_slot_and_at_least_it() {
        assert_eq!(
            fields_of(&with_numbers(30, 15, 180, 60, 90, 0)),
            ["min_duration_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 45, 180, 60, 90, 0)),
            ["min_duration_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 0, 180, 60, 90, 0)),
            ["min_duration_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 1470, 180, 60, 90, 0)),
            ["min_duration_minutes"]
        );
    }

    #[test]
    fn max_duration_must_be_a_multiple_at_least_min_and_at_most_a_day() {
        assert_eq!(
            fields_of(&with_numbers(30, 60, 30, 60, 90, 0)),
            ["max_duration_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 30, 100, 60, 90, 0)),
            ["max_duration_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 30, 1470, 60, 90, 0)),
            ["max_duration_minutes"]
        );
    }

    #[test]
    fn notice_horizon_and_buffer_have_ranges() {
        assert_eq!(
            fields_of(&with_numbers(30, 30, 180, -1, 90, 0)),
            ["min_notice_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 30, 180, 525_601, 90, 0)),
            ["min_notice_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 30, 180, 60, 0, 0)),
            ["horizon_days"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 30, 180, 60, 731, 0)),
            ["horizon_days"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 30, 180, 60, 90, -1)),
            ["buffer_minutes"]
        );
        assert_eq!(
            fields_of(&with_numbers(30, 30, 180, 60, 90, 1441)),
            ["buffer_minutes"]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let dto = AvailabilityRulesDto {
            timezone: Some("Nowhere".to_owned()),
            weekly: vec![weekly("someday", "09:00", "08:00")],
            exceptions: vec![exception("tomorrow", vec![])],
            ..with_numbers(3, 30, 180, -5, 1000, 0)
        };
        assert_eq!(
            fields_of(&dto),
            [
                "timezone",
                "weekly[0].weekday",
                "weekly[0].end",
                "exceptions[0].date",
                "slot_minutes",
                "min_notice_minutes",
                "horizon_days"
            ]
        );
    }

    #[test]
    fn allows_duration_checks_multiple_and_bounds() {
        let rules = parsed(&with_numbers(15, 30, 120, 60, 90, 0));
        assert!(rules.allows_duration(30));
        assert!(rules.allows_duration(45));
        assert!(rules.allows_duration(120));
        assert!(!rules.allows_duration(15));
        assert!(!rules.allows_duration(40));
        assert!(!rules.allows_duration(135));
        assert!(!rules.allows_duration(0));
    }

    #[test]
    fn window_new_enforces_its_invariant() {
        assert!(Window::new(0, 1440).is_ok());
        assert!(Window::new(600, 600).is_err());
        assert!(Window::new(1440, 1441).is_err());
        assert!(Window::new(0, 1441).is_err());
    }
}
