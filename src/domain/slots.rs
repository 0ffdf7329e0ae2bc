//! Bookable starts and the one booking check.
//!
//! A start is bookable (SPEC "Availability rules") when it is a window's real start plus whole
//! slots of real time, inside that window, the session fits the stretch the window belongs to,
//! it respects notice and horizon, and the session widened by the buffer touches no busy time.
//! `bookable_slots` and `check_start` both run `bookable_starts`, so a listed slot is always
//! accepted and an accepted start is always listed. Wall-clock handling lives in `local_time`.

use chrono::{DateTime, FixedOffset, Offset as _, SecondsFormat, TimeDelta, TimeZone as _, Utc};

use super::TimeZone;
use super::availability::AvailabilityRules;
use super::local_time;

/// A half-open interval of real time, [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Why a start is not bookable; when several apply, the first in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The duration is not a multiple of `slot_minutes` or lies outside [min, max].
    #[error(
        "the duration must be a multiple of the tutor's slot length, within their minimum and maximum"
    )]
    BadDuration,
    /// The start is before now.
    #[error("the start is in the past")]
    InThePast,
    /// The start is sooner than now + `min_notice_minutes`.
    #[error("the start is sooner than the tutor's minimum notice")]
    TooSoon,
    /// The start is later than now + `horizon_days`.
    #[error("the start is further ahead than the tutor accepts bookings")]
    TooFar,
    /// The start is not on a window's grid, or the session does not fit its stretch.
    #[error("the tutor is not available for that start and duration")]
    OutsideAvailability,
    /// Available, but the session with its buffer overlaps busy time.
    #[error("the slot is taken")]
    SlotTaken,
}

impl Refusal {
    /// The stable machine word for the problem-details `code` field.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadDuration => "bad_duration",
            Self::InThePast => "in_the_past",
            Self::TooSoon => "too_soon",
            Self::TooFar => "too_far",
            Self::OutsideAvailability => "outside_availability",
            Self::SlotTaken => "slot_taken",
        }
    }
}

/// A bookable session: `end` is `start` plus the requested duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The stretches of availability (merged windows) that intersect [from, to), in order.
/// Not clipped to the range; a stretch that goes on for days (e.g. 24/7 availability) is
/// followed only about two local dates beyond the range. Work is linear in the range's length;
/// callers bound it (SPEC: 31 days).
pub fn stretches(
    rules: &AvailabilityRules,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Interval> {
    local_time::plan(rules, from, to)
        .stretches
        .into_iter()
        .filter(|s| s.start < to && s.end > from)
        .collect()
}

/// Bookable starts in [from, to) for `duration_minutes`, ascending, without duplicates.
/// `busy` holds the tutor's active sessions (any order, may overlap or touch). Work is bounded by
/// the horizon (at most 730 days) whatever the range; callers should still bound it (SPEC: 31 days).
pub fn bookable_slots(
    rules: &AvailabilityRules,
    busy: &[Interval],
    now: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    duration_minutes: u32,
) -> Result<Vec<Slot>, Refusal> {
    let bounds = StartBounds::at(rules, now);
    bookable_slots_within(rules, busy, bounds, from, to, duration_minutes)
}

/// `bookable_slots` with the notice and horizon given as `bounds` rather than read off a clock.
/// With [`StartBounds::ANY_TIME`] the list holds every slot the rules and busy time allow; as
/// time passes only its ends move, so `bookable_slots` at any `now` is exactly that list cut to
/// [`StartBounds::at`] `now` (a property the tests check), and it can be kept until the
/// schedule changes.
pub fn bookable_slots_within(
    rules: &AvailabilityRules,
    busy: &[Interval],
    bounds: StartBounds,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    duration_minutes: u32,
) -> Result<Vec<Slot>, Refusal> {
    let duration = session_length(rules, duration_minutes)?;
    let blocked = blocked(rules, busy);
    Ok(bookable_starts(rules, &blocked, bounds, from, to, duration)
        .into_iter()
        .map(|start| Slot {
            start,
            end: saturating_add(start, duration),
        })
        .collect())
}

/// When a session may start, as of some instant: no sooner than `min_notice_minutes` after it
/// and no later than `horizon_days` after it, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartBounds {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

impl StartBounds {
    /// No bound at all.
    pub const ANY_TIME: Self = Self {
        earliest: DateTime::<Utc>::MIN_UTC,
        latest: DateTime::<Utc>::MAX_UTC,
    };

    /// The bounds the rules set at `now`.
    pub fn at(rules: &AvailabilityRules, now: DateTime<Utc>) -> Self {
        Self {
            earliest: earliest_start(rules, now),
            latest: latest_start(rules, now),
        }
    }

    pub fn contains(&self, start: DateTime<Utc>) -> bool {
        self.earliest <= start && start <= self.latest
    }
}

/// The booking check: `Ok` exactly when `start` is among `bookable_slots` for any range
/// containing it, else the first `Refusal` that applies.
pub fn check_start(
    rules: &AvailabilityRules,
    busy: &[Interval],
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    duration_minutes: u32,
) -> Result<Slot, Refusal> {
    let duration = session_length(rules, duration_minutes)?;
    if start < now {
        return Err(Refusal::InThePast);
    }
    if start < earliest_start(rules, now) {
        return Err(Refusal::TooSoon);
    }
    if start > latest_start(rules, now) {
        return Err(Refusal::TooFar);
    }
    let Some(just_after) = start.checked_add_signed(TimeDelta::nanoseconds(1)) else {
        return Err(Refusal::OutsideAvailability);
    };
    // The same walk as `bookable_slots`, over the one-instant range [start, start + 1 ns):
    // first ignoring busy time (to tell "not available" from "taken"), then with it.
    let offered = |blocked: &[Interval]| {
        bookable_starts(
            rules,
            blocked,
            StartBounds::at(rules, now),
            start,
            just_after,
            duration,
        )
        .contains(&start)
    };
    if !offered(&[]) {
        return Err(Refusal::OutsideAvailability);
    }
    if !offered(&blocked(rules, busy)) {
        return Err(Refusal::SlotTaken);
    }
    Ok(Slot {
        start,
        end: saturating_add(start, duration),
    })
}

/// Whether `[start, start + duration_minutes)`, widened by the buffer, touches busy time: when
/// it does not, [`check_start`] never answers [`Refusal::SlotTaken`] for it. A cheap first look
/// (no walk of the availability windows) for callers that only want to catch taken slots early.
pub fn near_busy(
    rules: &AvailabilityRules,
    busy: &[Interval],
    start: DateTime<Utc>,
    duration_minutes: u32,
) -> bool {
    let buffer = minutes(rules.buffer_minutes());
    let from = start
        .checked_sub_signed(buffer)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let to = saturating_add(start, minutes(duration_minutes) + buffer);
    busy.iter()
        .any(|b| b.start < b.end && b.start < to && b.end > from)
}

/// Free time inside availability, for live snapshots: the stretches within [from, to)
/// (clipped) minus the busy intervals, ascending and never touching. Like notice and horizon,
/// the buffer is a rule of where a session may start, not time taken, so it is not applied:
/// a client that applies `slot.booked` and `slot.released` (a session's own times) to a
/// snapshot then holds exactly what a fresh snapshot says. Work is linear in the range's
/// length.
pub fn free_intervals(
    rules: &AvailabilityRules,
    busy: &[Interval],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Interval> {
    let blocked = widened(busy, TimeDelta::zero());
    let mut free = Vec::new();
    for stretch in stretches(rules, from, to) {
        let (mut cursor, end) = (stretch.start.max(from), stretch.end.min(to));
        let first = blocked.partition_point(|b| b.end <= cursor);
        for b in blocked[first..].iter().take_while(|b| b.start < end) {
            if cursor < b.start {
                free.push(Interval {
                    start: cursor,
                    end: b.start,
                });
            }
            cursor = cursor.max(b.end);
        }
        if cursor < end {
            free.push(Interval { start: cursor, end });
        }
    }
    free
}

/// `at` as RFC 3339 with the offset of the rules' zone at that instant,
/// e.g. `"2026-12-01T09:00:00-03:00"`.
pub fn local_rfc3339(rules: &AvailabilityRules, at: DateTime<Utc>) -> String {
    local_rfc3339_in(rules.timezone(), at)
}

/// `at` as RFC 3339 with the offset of `zone` at that instant.
pub fn local_rfc3339_in(zone: TimeZone, at: DateTime<Utc>) -> String {
    let offset: FixedOffset = zone.tz().offset_from_utc_datetime(&at.naive_utc()).fix();
    // chrono panics when formatting a local time beyond its range; fall back to UTC there.
    match at.naive_utc().checked_add_offset(offset) {
        Some(_) => at
            .with_timezone(&offset)
            .to_rfc3339_opts(SecondsFormat::Secs, false),
        None => at.to_rfc3339_opts(SecondsFormat::Secs, false),
    }
}

/// The requested duration, if the rules allow it.
fn session_length(rules: &AvailabilityRules, duration_minutes: u32) -> Result<TimeDelta, Refusal> {
    if rules.allows_duration(duration_minutes) {
        Ok(minutes(duration_minutes))
    } else {
        Err(Refusal::BadDuration)
    }
}

fn earliest_start(rules: &AvailabilityRules, now: DateTime<Utc>) -> DateTime<Utc> {
    saturating_add(now, minutes(rules.min_notice_minutes()))
}

fn latest_start(rules: &AvailabilityRules, now: DateTime<Utc>) -> DateTime<Utc> {
    saturating_add(now, TimeDelta::days(i64::from(rules.horizon_days())))
}

/// The busy intervals widened by the buffer, sorted and merged, so a session [t, t + D) is
/// clear of them exactly when [t − buffer, t + D + buffer) is clear of the originals
/// (half-open: a gap of exactly the buffer is fine).
fn blocked(rules: &AvailabilityRules, busy: &[Interval]) -> Vec<Interval> {
    widened(busy, minutes(rules.buffer_minutes()))
}

/// The busy intervals widened by `buffer` on both sides, sorted and merged.
fn widened(busy: &[Interval], buffer: TimeDelta) -> Vec<Interval> {
    let mut widened: Vec<Interval> = busy
        .iter()
        .filter(|b| b.start < b.end)
        .map(|b| Interval {
            start: b
                .start
                .checked_sub_signed(buffer)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            end: saturating_add(b.end, buffer),
        })
        .collect();
    widened.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(widened.len());
    for b in widened {
        match merged.last_mut() {
            Some(last) if b.start <= last.end => last.end = last.end.max(b.end),
            _ => merged.push(b),
        }
    }
    merged
}

/// The one walk behind `bookable_slots` and `check_start`: every grid start in [from, to)
/// that fits its stretch, lies within `bounds`, and keeps `duration` clear of `blocked`
/// (sorted, merged). Ascending, without duplicates.
fn bookable_starts(
    rules: &AvailabilityRules,
    blocked: &[Interval],
    bounds: StartBounds,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    duration: TimeDelta,
) -> Vec<DateTime<Utc>> {
    let era = local_time::era();
    let latest = bounds.latest;
    // Filtering by the bounds and the era up front is the same as filtering each start, and
    // bounds the work by the horizon whatever range the caller asks for.
    let from = from.max(bounds.earliest).max(era.start);
    let to = to
        .min(era.end)
        .min(saturating_add(latest, TimeDelta::minutes(1)));
    if from >= to {
        return Vec::new();
    }
    let step = minutes(rules.slot_minutes());
    let plan = local_time::plan(rules, from, to);
    let mut starts = Vec::new();
    for window in &plan.windows {
        let Some(stretch) = plan.stretches.get(window.stretch) else {
            continue;
        };
        let Some(last_fitting) = stretch.end.checked_sub_signed(duration) else {
            continue;
        };
        let last = last_fitting.min(latest);
        let end = window.span.end.min(to);
        if from >= end {
            continue;
        }
        let mut next = grid_at_or_after(window.span.start, step, from);
        let mut first_clash = blocked.partition_point(|b| b.end <= from);
        while let Some(t) = next.filter(|&t| t < end && t <= last) {
            while blocked.get(first_clash).is_some_and(|b| b.end <= t) {
                first_clash += 1;
            }
            match blocked.get(first_clash) {
                // Merged and sorted: if the first blocked interval still running at `t` starts
                // after the session, so do all later ones. If it clashes, jump past it.
                Some(b) if b.start < saturating_add(t, duration) => {
                    next = (b.end < end)
                        .then(|| grid_at_or_after(window.span.start, step, b.end))
                        .flatten();
                }
                _ => {
                    starts.push(t);
                    next = t.checked_add_signed(step);
                }
            }
        }
    }
    // Windows may overlap in real time (fall-back day), offering a start twice.
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// The first instant `origin + k·step` (k ≥ 0) not before `at`. `None` only when the distance
/// does not fit in nanoseconds (hundreds of years), which callers rule out.
fn grid_at_or_after(
    origin: DateTime<Utc>,
    step: TimeDelta,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if at <= origin {
        return Some(origin);
    }
    let behind = u64::try_from((at - origin).num_nanoseconds()?).ok()?;
    let step_nanos = u64::try_from(step.num_nanoseconds()?)
        .ok()
        .filter(|&n| n > 0)?;
    let offset = behind.div_ceil(step_nanos).checked_mul(step_nanos)?;
    origin.checked_add_signed(TimeDelta::nanoseconds(i64::try_from(offset).ok()?))
}

fn minutes(m: u32) -> TimeDelta {
    TimeDelta::minutes(i64::from(m))
}

fn saturating_add(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TimeZone;
    use crate::domain::availability::{
        AvailabilityRulesDto, ExceptionDto, WeeklyWindowDto, WindowDto,
    };

    const EVERY_DAY: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];

    /// slot, min duration, max duration, notice, horizon days, buffer.
    type Numbers = [i64; 6];
    const PLAIN: Numbers = [30, 30, 180, 0, 730, 0];

    fn rules(
        zone: &str,
        daily: &[(&str, &str)],
        exceptions: &[(&str, &[(&str, &str)])],
        numbers: Numbers,
    ) -> AvailabilityRules {
        let dto = AvailabilityRulesDto {
            timezone: Some(zone.to_owned()),
            weekly: EVERY_DAY
                .iter()
                .flat_map(|day| {
                    daily.iter().map(|(start, end)| WeeklyWindowDto {
                        weekday: (*day).to_owned(),
                        start: (*start).to_owned(),
                        end: (*end).to_owned(),
                    })
                })
                .collect(),
            exceptions: exceptions
                .iter()
                .map(|(date, windows)| ExceptionDto {
                    date: (*date).to_owned(),
                    windows: windows
                        .iter()
                        .map(|(start, end)| WindowDto {
                            start: (*start).to_owned(),
                            end: (*end).to_owned(),
                        })
                        .collect(),
                })
                .collect(),
            slot_minutes: Some(numbers[0]),
            min_duration_minutes: Some(numbers[1]),
            max_duration_minutes: Some(numbers[2]),
            min_notice_minutes: Some(numbers[3]),
            horizon_days: Some(numbers[4]),
            buffer_minutes: Some(numbers[5]),
        };
        AvailabilityRules::parse(&dto, TimeZone::UTC).expect("valid test rules")
    }

    /// Rules with windows only on `date` (every other day blocked by having no weekly windows).
    fn on_date(
        zone: &str,
        date: &str,
        windows: &[(&str, &str)],
        numbers: Numbers,
    ) -> AvailabilityRules {
        rules(zone, &[], &[(date, windows)], numbers)
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .expect("test instant")
            .to_utc()
    }

    #[test]
    fn near_busy_is_true_only_within_the_buffer_of_busy_time() {
        let mut numbers = PLAIN;
        numbers[5] = 15; // buffer
        let rules = rules("UTC", &[("00:00", "24:00")], &[], numbers);
        let at = |h: u32, m: u32| utc(&format!("2026-12-01T{h:02}:{m:02}:00Z"));
        let busy = [Interval {
            start: at(10, 0),
            end: at(11, 0),
        }];
        assert!(near_busy(&rules, &busy, at(10, 30), 30));
        assert!(
            near_busy(&rules, &busy, at(9, 0), 60),
            "ends where it starts"
        );
        assert!(
            near_busy(&rules, &busy, at(11, 0), 30),
            "starts right at its end"
        );
        assert!(
            !near_busy(&rules, &busy, at(8, 30), 60),
            "ends 30 minutes before it"
        );
        assert!(
            !near_busy(&rules, &busy, at(11, 15), 30),
            "a full buffer after it"
        );
        assert!(!near_busy(&rules, &[], at(10, 30), 30));
    }

    fn interval(start: &str, end: &str) -> Interval {
        Interval {
            start: utc(start),
            end: utc(end),
        }
    }

    const LONG_AGO: &str = "2025-12-01T00:00:00Z";

    /// Local starts of the bookable slots in [from, to), with no busy time and `now` long ago.
    fn local_starts(rules: &AvailabilityRules, from: &str, to: &str, duration: u32) -> Vec<String> {
        bookable_slots(rules, &[], utc(LONG_AGO), utc(from), utc(to), duration)
            .expect("valid duration")
            .iter()
            .map(|slot| local_rfc3339(rules, slot.start))
            .collect()
    }

    #[test]
    fn new_york_window_across_the_spring_forward_gap_has_two_real_hours() {
        let rules = on_date(
            "America/New_York",
            "2026-03-08",
            &[("01:00", "04:00")],
            PLAIN,
        );
        assert_eq!(
            local_starts(&rules, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", 30),
            [
                "2026-03-08T01:00:00-05:00",
                "2026-03-08T01:30:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:30:00-04:00"
            ]
        );
        assert_eq!(
            local_starts(&rules, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", 120).len(),
            1
        );
        assert!(
            local_starts(&rules, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", 150).is_empty()
        );
    }

    #[test]
    fn a_start_inside_the_gap_maps_to_the_transition() {
        let rules = on_date(
            "America/New_York",
            "2026-03-08",
            &[("02:30", "04:00")],
            PLAIN,
        );
        let slots = bookable_slots(
            &rules,
            &[],
            utc(LONG_AGO),
            utc("2026-03-08T00:00:00Z"),
            utc("2026-03-09T00:00:00Z"),
            30,
        );
        let starts: Vec<_> = slots.expect("valid").iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            [utc("2026-03-08T07:00:00Z"), utc("2026-03-08T07:30:00Z")]
        );
        assert_eq!(
            local_rfc3339(&rules, starts[0]),
            "2026-03-08T03:00:00-04:00"
        );
    }

    #[test]
    fn fall_back_ambiguous_start_is_the_earlier_instant_and_end_the_later() {
        let rules = on_date(
            "America/New_York",
            "2026-11-01",
            &[("01:30", "03:00")],
            PLAIN,
        );
        // 01:30 EDT (05:30Z) to 03:00 EST (08:00Z): two and a half real hours.
        assert_eq!(
            stretches(
                &rules,
                utc("2026-11-01T00:00:00Z"),
                utc("2026-11-02T00:00:00Z")
            ),
            [interval("2026-11-01T05:30:00Z", "2026-11-01T08:00:00Z")]
        );
        assert_eq!(
            local_starts(&rules, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", 30),
            [
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:30:00-05:00"
            ]
        );
        let ends_ambiguous = on_date(
            "America/New_York",
            "2026-11-01",
            &[("00:00", "01:30")],
            PLAIN,
        );
        // 00:00 EDT to the second 01:30 (EST): 150 real minutes, so a 150-minute session fits.
        assert_eq!(
            local_starts(
                &ends_ambiguous,
                "2026-11-01T00:00:00Z",
                "2026-11-02T00:00:00Z",
                150
            ),
            ["2026-11-01T00:00:00-04:00"]
        );
    }

    #[test]
    fn fall_back_windows_overlapping_in_real_time_offer_each_start_once() {
        let rules = on_date(
            "America/New_York",
            "2026-11-01",
            &[("00:00", "01:30"), ("01:30", "03:00")],
            PLAIN,
        );
        let starts = local_starts(&rules, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", 30);
        // 04:00Z..07:30Z every 30 minutes, each once although both windows offer 05:30Z and 06:00Z.
        assert_eq!(starts.len(), 8);
        assert_eq!(starts[0], "2026-11-01T00:00:00-04:00");
        assert_eq!(starts[7], "2026-11-01T02:30:00-05:00");
        // The stretch is 04:00Z–08:00Z, so a four-hour session fits from the first start.
        assert_eq!(
            local_starts(&rules, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", 180).len(),
            3
        );
    }

    #[test]
    fn london_dst_days_are_shorter_and_longer() {
        let spring = on_date("Europe/London", "2026-03-29", &[("00:00", "03:00")], PLAIN);
        assert_eq!(
            stretches(
                &spring,
                utc("2026-03-28T00:00:00Z"),
                utc("2026-03-30T00:00:00Z")
            ),
            [interval("2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z")]
        );
        let autumn = on_date("Europe/London", "2026-10-25", &[("00:00", "03:00")], PLAIN);
        assert_eq!(
            stretches(
                &autumn,
                utc("2026-10-24T00:00:00Z"),
                utc("2026-10-26T00:00:00Z")
            ),
            [interval("2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z")]
        );
        assert_eq!(
            local_starts(&autumn, "2026-10-24T00:00:00Z", "2026-10-26T00:00:00Z", 180)
                .first()
                .map(String::as_str),
            Some("2026-10-25T00:00:00+01:00")
        );
    }

    #[test]
    fn sao_paulo_is_minus_three_all_year_and_kolkata_plus_five_thirty() {
        for (date, from, to) in [
            ("2026-01-15", "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"),
            ("2026-07-15", "2026-07-15T00:00:00Z", "2026-07-16T00:00:00Z"),
        ] {
            let rules = on_date("America/Sao_Paulo", date, &[("09:00", "10:00")], PLAIN);
            assert_eq!(
                local_starts(&rules, from, to, 30),
                [
                    format!("{date}T09:00:00-03:00"),
                    format!("{date}T09:30:00-03:00")
                ]
            );
            assert_eq!(
                stretches(&rules, utc(from), utc(to))[0].start,
                utc(&format!("{date}T12:00:00Z"))
            );
        }
        let kolkata = on_date("Asia/Kolkata", "2026-07-15", &[("09:00", "10:00")], PLAIN);
        let slots = bookable_slots(
            &kolkata,
            &[],
            utc(LONG_AGO),
            utc("2026-07-15T00:00:00Z"),
            utc("2026-07-16T00:00:00Z"),
            60,
        );
        assert_eq!(
            slots,
            Ok(vec![Slot {
                start: utc("2026-07-15T03:30:00Z"),
                end: utc("2026-07-15T04:30:00Z")
            }])
        );
        assert_eq!(
            local_rfc3339(&kolkata, utc("2026-07-15T03:30:00Z")),
            "2026-07-15T09:00:00+05:30"
        );
    }

    #[test]
    fn lord_howe_shifts_by_half_an_hour() {
        // 2026-10-04: 02:00 (+10:30) jumps to 02:30 (+11:00). 01:00–04:00 is 2.5 real hours.
        let rules = on_date(
            "Australia/Lord_Howe",
            "2026-10-04",
            &[("01:00", "04:00")],
            PLAIN,
        );
        assert_eq!(
            local_starts(&rules, "2026-10-03T00:00:00Z", "2026-10-05T00:00:00Z", 30),
            [
                "2026-10-04T01:00:00+10:30",
                "2026-10-04T01:30:00+10:30",
                "2026-10-04T02:30:00+11:00",
                "2026-10-04T03:00:00+11:00",
                "2026-10-04T03:30:00+11:00"
            ]
        );
        // 2026-04-05: 02:00 (+11:00) falls back to 01:30 (+10:30). 01:00–03:00 is 2.5 real hours.
        let rules = on_date(
            "Australia/Lord_Howe",
            "2026-04-05",
            &[("01:00", "03:00")],
            PLAIN,
        );
        assert_eq!(
            stretches(
                &rules,
                utc("2026-04-04T00:00:00Z"),
                utc("2026-04-06T00:00:00Z")
            ),
            [interval("2026-04-04T14:00:00Z", "2026-04-04T16:30:00Z")]
        );
    }

    #[test]
    fn windows_touching_at_midnight_allow_a_session_across_it() {
        let across = rules(
            "America/Sao_Paulo",
            &[("22:00", "24:00"), ("00:00", "02:00")],
            &[],
            PLAIN,
        );
        assert_eq!(
            local_starts(&across, "2026-12-01T12:00:00Z", "2026-12-02T12:00:00Z", 180),
            [
                "2026-12-01T22:00:00-03:00",
                "2026-12-01T22:30:00-03:00",
                "2026-12-01T23:00:00-03:00"
            ]
        );
        let evenings_only = rules("America/Sao_Paulo", &[("22:00", "24:00")], &[], PLAIN);
        assert!(
            local_starts(
                &evenings_only,
                "2026-12-01T12:00:00Z",
                "2026-12-02T12:00:00Z",
                180
            )
            .is_empty()
        );
    }

    #[test]
    fn santiago_midnight_that_does_not_exist_still_joins_the_days() {
        // 2026-09-06 00:00 never happens in Santiago (00:00 -04 jumps to 01:00 -03 at 04:00Z):
        // "24:00" and the next "00:00" both map to the jump, so the windows touch.
        let rules = rules(
            "America/Santiago",
            &[],
            &[
                ("2026-09-05", &[("22:00", "24:00")]),
                ("2026-09-06", &[("00:00", "02:00")]),
            ],
            PLAIN,
        );
        assert_eq!(
            stretches(
                &rules,
                utc("2026-09-05T00:00:00Z"),
                utc("2026-09-07T00:00:00Z")
            ),
            [interval("2026-09-06T02:00:00Z", "2026-09-06T05:00:00Z")]
        );
        assert_eq!(
            local_starts(&rules, "2026-09-05T00:00:00Z", "2026-09-07T00:00:00Z", 180),
            ["2026-09-05T22:00:00-04:00"]
        );
        // 2026-04-05 00:00 -03 falls back to 2026-04-04 23:00 -04: 22:00–24:00 lasts 3 hours.
        let rules = on_date(
            "America/Santiago",
            "2026-04-04",
            &[("22:00", "24:00")],
            PLAIN,
        );
        assert_eq!(
            stretches(
                &rules,
                utc("2026-04-04T00:00:00Z"),
                utc("2026-04-06T00:00:00Z")
            ),
            [interval("2026-04-05T01:00:00Z", "2026-04-05T04:00:00Z")]
        );
    }

    #[test]
    fn an_exception_replaces_the_day_and_an_empty_one_blocks_it() {
        let rules = rules(
            "America/Sao_Paulo",
            &[("09:00", "10:00")],
            &[("2026-12-24", &[]), ("2026-12-26", &[("14:00", "15:00")])],
            PLAIN,
        );
        let day = |date: &str| {
            local_starts(
                &rules,
                &format!("{date}T03:00:00Z"),
                &format!("{date}T23:59:00Z"),
                60,
            )
        };
        assert_eq!(day("2026-12-23"), ["2026-12-23T09:00:00-03:00"]);
        assert!(day("2026-12-24").is_empty());
        assert_eq!(day("2026-12-26"), ["2026-12-26T14:00:00-03:00"]);
    }

    #[test]
    fn the_grid_is_anchored_at_each_windows_own_start() {
        let alone = on_date("UTC", "2026-12-01", &[("09:10", "10:00")], PLAIN);
        assert_eq!(
            local_starts(&alone, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", 30),
            ["2026-12-01T09:10:00+00:00"]
        );
        let continued = on_date(
            "UTC",
            "2026-12-01",
            &[("09:10", "10:00"), ("10:00", "11:00")],
            PLAIN,
        );
        assert_eq!(
            local_starts(
                &continued,
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                30
            ),
            [
                "2026-12-01T09:10:00+00:00",
                "2026-12-01T09:40:00+00:00",
                "2026-12-01T10:00:00+00:00",
                "2026-12-01T10:30:00+00:00"
            ]
        );
        let now = utc(LONG_AGO);
        assert_eq!(
            check_start(&continued, &[], now, utc("2026-12-01T09:25:00Z"), 30),
            Err(Refusal::OutsideAvailability)
        );
        assert_eq!(
            check_start(&continued, &[], now, utc("2026-12-01T09:40:00Z"), 30).map(|s| s.end),
            Ok(utc("2026-12-01T10:10:00Z"))
        );
        assert_eq!(
            check_start(&continued, &[], now, utc("2026-12-01T10:40:00Z"), 30),
            Err(Refusal::OutsideAvailability)
        );
    }

    #[test]
    fn a_gap_of_exactly_the_buffer_is_fine() {
        let rules = on_date(
            "UTC",
            "2026-12-01",
            &[("08:00", "14:00")],
            [15, 60, 60, 0, 730, 15],
        );
        let busy = [interval("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z")];
        let now = utc(LONG_AGO);
        let check = |start: &str| check_start(&rules, &busy, now, utc(start), 60).map(|_| ());
        assert_eq!(check("2026-12-01T08:45:00Z"), Ok(()));
        assert_eq!(check("2026-12-01T09:00:00Z"), Err(Refusal::SlotTaken));
        assert_eq!(check("2026-12-01T11:00:00Z"), Err(Refusal::SlotTaken));
        assert_eq!(check("2026-12-01T11:15:00Z"), Ok(()));
        let slots = bookable_slots(
            &rules,
            &busy,
            now,
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-02T00:00:00Z"),
            60,
        )
        .expect("valid");
        let starts: Vec<_> = slots
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(
            starts,
            [
                "08:00", "08:15", "08:30", "08:45", "11:15", "11:30", "11:45", "12:00", "12:15",
                "12:30", "12:45", "13:00"
            ]
        );
    }

    #[test]
    fn busy_intervals_may_be_unsorted_overlapping_or_empty() {
        let rules = on_date(
            "UTC",
            "2026-12-01",
            &[("08:00", "12:00")],
            [30, 60, 60, 0, 730, 0],
        );
        let busy = [
            interval("2026-12-01T10:30:00Z", "2026-12-01T11:00:00Z"),
            interval("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            interval("2026-12-01T09:30:00Z", "2026-12-01T10:15:00Z"),
            interval("2026-12-01T08:30:00Z", "2026-12-01T08:30:00Z"),
        ];
        let slots = bookable_slots(
            &rules,
            &busy,
            utc(LONG_AGO),
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-02T00:00:00Z"),
            60,
        )
        .expect("valid");
        let starts: Vec<_> = slots
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(starts, ["08:00", "11:00"]);
    }

    #[test]
    fn notice_and_horizon_bound_the_starts() {
        let rules = rules("UTC", &[("00:00", "24:00")], &[], [30, 30, 30, 60, 1, 0]);
        let now = utc("2026-12-01T10:00:00Z");
        let check = |start: &str| check_start(&rules, &[], now, utc(start), 30).map(|_| ());
        assert_eq!(check("2026-12-01T09:30:00Z"), Err(Refusal::InThePast));
        assert_eq!(check("2026-12-01T10:30:00Z"), Err(Refusal::TooSoon));
        assert_eq!(check("2026-12-01T11:00:00Z"), Ok(()));
        assert_eq!(check("2026-12-02T10:00:00Z"), Ok(()));
        assert_eq!(check("2026-12-02T10:30:00Z"), Err(Refusal::TooFar));
        let slots = bookable_slots(
            &rules,
            &[],
            now,
            utc("2026-11-30T00:00:00Z"),
            utc("2026-12-05T00:00:00Z"),
            30,
        )
        .expect("valid");
        assert_eq!(
            slots.first().map(|s| s.start),
            Some(utc("2026-12-01T11:00:00Z"))
        );
        assert_eq!(
            slots.last().map(|s| s.start),
            Some(utc("2026-12-02T10:00:00Z"))
        );
        assert_eq!(slots.len(), 47);
    }

    #[test]
    fn refusals_come_in_the_documented_order() {
        let rules = on_date(
            "UTC",
            "2026-12-01",
            &[("09:00", "12:00")],
            [30, 30, 120, 60, 2, 0],
        );
        let now = utc("2026-12-01T08:00:00Z");
        let busy = [interval("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z")];
        let check =
            |start: &str, minutes| check_start(&rules, &busy, now, utc(start), minutes).map(|_| ());
        // A bad duration wins over everything, even a past start.
        assert_eq!(check("2026-12-01T07:00:00Z", 45), Err(Refusal::BadDuration));
        assert_eq!(
            check("2026-12-01T09:00:00Z", 150),
            Err(Refusal::BadDuration)
        );
        // In the past wins over too soon; too soon over outside.
        assert_eq!(check("2026-12-01T07:00:00Z", 30), Err(Refusal::InThePast));
        assert_eq!(check("2026-12-01T08:15:00Z", 30), Err(Refusal::TooSoon));
        // Too far wins over outside availability.
        assert_eq!(check("2026-12-04T09:00:00Z", 30), Err(Refusal::TooFar));
        // Off the grid, or not fitting, is outside even where busy.
        assert_eq!(
            check("2026-12-01T10:15:00Z", 30),
            Err(Refusal::OutsideAvailability)
        );
        assert_eq!(
            check("2026-12-01T11:30:00Z", 60),
            Err(Refusal::OutsideAvailability)
        );
        assert_eq!(
            check("2026-12-02T10:00:00Z", 30),
            Err(Refusal::OutsideAvailability)
        );
        // On the grid and fitting, but busy.
        assert_eq!(check("2026-12-01T09:30:00Z", 60), Err(Refusal::SlotTaken));
        assert_eq!(check("2026-12-01T09:00:00Z", 60), Ok(()));
        assert_eq!(Refusal::SlotTaken.code(), "slot_taken");
    }

    #[test]
    fn a_bad_duration_is_the_only_error_of_bookable_slots() {
        let rules = on_date("UTC", "2026-12-01", &[("09:00", "12:00")], PLAIN);
        let (now, from, to) = (
            utc(LONG_AGO),
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-02T00:00:00Z"),
        );
        for minutes in [0, 20, 45, 210, u32::MAX] {
            assert_eq!(
                bookable_slots(&rules, &[], now, from, to, minutes),
                Err(Refusal::BadDuration)
            );
        }
        assert_eq!(bookable_slots(&rules, &[], now, to, from, 30), Ok(vec![]));
    }

    #[test]
    fn stretches_are_those_meeting_the_range() {
        let rules = on_date(
            "UTC",
            "2026-12-01",
            &[("09:00", "10:00"), ("11:00", "12:00")],
            PLAIN,
        );
        assert_eq!(
            stretches(
                &rules,
                utc("2026-12-01T10:00:00Z"),
                utc("2026-12-01T11:00:01Z")
            ),
            [interval("2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z")]
        );
        assert_eq!(
            stretches(
                &rules,
                utc("2026-12-01T09:59:00Z"),
                utc("2026-12-01T11:00:00Z")
            ),
            [interval("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")]
        );
    }

    #[test]
    fn free_intervals_clip_to_the_range_and_subtract_busy_time_without_buffers() {
        let rules = on_date(
            "UTC",
            "2026-12-01",
            &[("09:00", "12:00"), ("12:00", "13:00"), ("15:00", "16:00")],
            [30, 30, 180, 60, 90, 10],
        );
        let busy = [
            interval("2026-12-01T10:00:00Z", "2026-12-01T10:30:00Z"),
            interval("2026-12-01T10:45:00Z", "2026-12-01T11:00:00Z"),
            interval("2026-12-01T15:50:00Z", "2026-12-01T17:00:00Z"),
        ];
        assert_eq!(
            free_intervals(
                &rules,
                &busy,
                utc("2026-12-01T09:30:00Z"),
                utc("2026-12-02T00:00:00Z")
            ),
            [
                interval("2026-12-01T09:30:00Z", "2026-12-01T10:00:00Z"),
                interval("2026-12-01T10:30:00Z", "2026-12-01T10:45:00Z"),
                interval("2026-12-01T11:00:00Z", "2026-12-01T13:00:00Z"),
                interval("2026-12-01T15:00:00Z", "2026-12-01T15:50:00Z"),
            ]
        );
        assert!(
            free_intervals(
                &rules,
                &busy,
                utc("2026-12-01T13:00:00Z"),
                utc("2026-12-01T15:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn local_rfc3339_uses_the_offset_at_that_instant() {
        let ny = rules("America/New_York", &[], &[], PLAIN);
        assert_eq!(
            local_rfc3339(&ny, utc("2026-03-08T06:59:00Z")),
            "2026-03-08T01:59:00-05:00"
        );
        assert_eq!(
            local_rfc3339(&ny, utc("2026-03-08T07:00:00Z")),
            "2026-03-08T03:00:00-04:00"
        );
        let sao_paulo = rules("America/Sao_Paulo", &[], &[], PLAIN);
        assert_eq!(
            local_rfc3339(&sao_paulo, utc("2026-12-01T12:00:00Z")),
            "2026-12-01T09:00:00-03:00"
        );
        let utc_rules = rules("UTC", &[], &[], PLAIN);
        assert_eq!(
            local_rfc3339(&utc_rules, utc("2026-12-01T12:00:00Z")),
            "2026-12-01T12:00:00+00:00"
        );
        // Extreme instants render without panicking.
        for zone in ["America/Sao_Paulo", "Asia/Kolkata", "Pacific/Kiritimati"] {
            let rules = rules(zone, &[], &[], PLAIN);
            assert!(!local_rfc3339(&rules, DateTime::<Utc>::MIN_UTC).is_empty());
            assert!(!local_rfc3339(&rules, DateTime::<Utc>::MAX_UTC).is_empty());
        }
    }

    #[test]
    fn extreme_instants_are_refused_without_panicking() {
        let rules = rules(
            "Pacific/Kiritimati",
            &[("00:00", "24:00")],
            &[],
            [5, 5, 1440, 0, 730, 1440],
        );
        let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        let busy = [Interval {
            start: min,
            end: max,
        }];
        for now in [min, max] {
            for start in [min, max] {
                assert!(check_start(&rules, &busy, now, start, 1440).is_err());
                assert!(check_start(&rules, &[], now, start, 5).is_err());
            }
            assert_eq!(bookable_slots(&rules, &busy, now, min, max, 5), Ok(vec![]));
        }
        assert!(
            free_intervals(
                &rules,
                &busy,
                utc("2026-01-01T00:00:00Z"),
                utc("2026-01-02T00:00:00Z")
            )
            .is_empty()
        );
        let slots = bookable_slots(&rules, &[], min, min, max, 5).expect("valid");
        assert!(
            slots.is_empty(),
            "now = MIN_UTC is long before the era, past the horizon"
        );
    }

    #[test]
    fn a_month_of_five_windows_a_day_is_quick() {
        let rules = rules(
            "America/New_York",
            &[
                ("07:00", "08:30"),
                ("09:00", "11:00"),
                ("12:00", "14:00"),
                ("15:00", "18:00"),
                ("19:00", "24:00"),
            ],
            &[],
            [15, 30, 180, 60, 90, 10],
        );
        let now = utc("2026-10-20T00:00:00Z");
        let busy: Vec<_> = (0..60)
            .map(|i| {
                let start = now + TimeDelta::hours(13 * i);
                Interval {
                    start,
                    end: start + TimeDelta::minutes(90),
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let slots =
            bookable_slots(&rules, &busy, now, now, now + TimeDelta::days(31), 60).expect("valid");
        let elapsed = started.elapsed();
        assert!(slots.len() > 500, "{}", slots.len());
        eprintln!("{} slots in {elapsed:?}", slots.len());
        // Release builds take microseconds; this loose bound holds even unoptimised.
        assert!(
            elapsed < std::time::Duration::from_millis(50),
            "{elapsed:?}"
        );
    }
}

/// Property tests: random rules in DST-rich zones, random busy time and `now`, checked against a
/// brute-force reading of SPEC that walks every window's grid without shortcuts.
#[cfg(test)]
mod properties {
    use std::collections::BTreeSet;

    use chrono::{Days, NaiveDate};
    use proptest::prelude::*;

    use super::*;
    use crate::domain::TimeZone;
    use crate::domain::availability::{
        AvailabilityRulesDto, ExceptionDto, WeeklyWindowDto, WindowDto,
    };

    const ZONES: [&str; 8] = [
        "UTC",
        "America/New_York",
        "Europe/London",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "America/St_Johns",
    ];
    /// Transition days of the zones above, so DST is exercised far more often than at random.
    const DST_DAYS: [&str; 8] = [
        "2026-03-08",
        "2026-03-29",
        "2026-04-05",
        "2026-09-27",
        "2026-10-04",
        "2026-10-25",
        "2026-11-01",
        "2026-12-31",
    ];
    const WEEKDAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];

    #[derive(Debug, Clone)]
    struct Scenario {
        rules: AvailabilityRules,
        busy: Vec<Interval>,
        now: DateTime<Utc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        duration_minutes: u32,
        /// Instants to put to `check_start`, besides the slots found.
        probes: Vec<DateTime<Utc>>,
    }

    fn clock(minute: u16) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }

    /// One day's windows: the day cut at random minutes, each piece on or off, so windows often
    /// touch each other and midnight.
    fn day_windows() -> impl Strategy<Value = Vec<(u16, u16)>> {
        let cut = prop_oneof![
            1u16..1440,
            (1u16..288).prop_map(|m| m * 5),
            (1u16..24).prop_map(|h| h * 60)
        ];
        (
            prop::collection::btree_set(cut, 0..6),
            prop::collection::vec(any::<bool>(), 7),
        )
            .prop_map(|(cuts, on)| {
                let bounds: Vec<u16> = std::iter::once(0)
                    .chain(cuts)
                    .chain(std::iter::once(1440))
                    .collect();
                bounds
                    .windows(2)
                    .zip(on)
                    .filter(|(_, on)| *on)
                    .map(|(w, _)| (w[0], w[1]))
                    .collect()
            })
    }

    fn first_day() -> impl Strategy<Value = NaiveDate> {
        let parse = |raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap_or_default();
        prop_oneof![
            prop::sample::select(DST_DAYS.to_vec()).prop_map(parse),
            (0u64..365).prop_map(move |d| parse("2026-01-01") + Days::new(d)),
        ]
    }

    fn minutes_after(at: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        at + TimeDelta::minutes(minutes)
    }

    prop_compose! {
        fn scenario()(
            zone in prop::sample::select(ZONES.to_vec()),
            weekly in prop::collection::vec(day_windows(), 7),
            exceptions in prop::collection::vec((0u64..8, day_windows()), 0..4),
            slot in prop::sample::select(vec![5u32, 10, 15, 20, 30, 45, 60, 90]),
            min_slots in 1u32..=4,
            extra_slots in 0u32..=6,
            pick in 0u32..=6,
            bad_duration in prop::bool::weighted(0.1),
            notice in prop_oneof![Just(0u32), 0u32..=600],
            horizon in 1u32..=5,
            buffer in prop_oneof![Just(0u32), Just(15u32), 0u32..=60],
            day in first_day(),
            from_minute in -720i64..1440,
            length in 0i64..(3 * 1440),
            now_minute in -(3 * 1440i64)..(3 * 1440),
            now_second in prop_oneof![Just(0i64), 0i64..60],
            busy in prop::collection::vec(
                (
                    // Often on round minutes, so busy time lands exactly a buffer from a start.
                    prop_oneof![-1500i64..6000, (-100i64..400).prop_map(|m| m * 15)],
                    prop_oneof![1i64..600, (1i64..16).prop_map(|m| m * 30)],
                    prop_oneof![3 => Just(0i64), 1 => 0i64..60],
                ),
                0..6,
            ),
            probes in prop::collection::vec(-120i64..(3 * 1440 + 120), 0..20),
        ) -> Scenario {
            let exception_day = |offset: u64| (day - Days::new(3) + Days::new(offset)).format("%Y-%m-%d").to_string();
            let dto = AvailabilityRulesDto {
                timezone: Some(zone.to_owned()),
                weekly: WEEKDAYS.iter().zip(&weekly).flat_map(|(weekday, windows)| {
                    windows.iter().map(|&(start, end)| WeeklyWindowDto {
                        weekday: (*weekday).to_owned(),
                        start: clock(start),
                        end: clock(end),
                    })
                }).collect(),
                // Repeated dates would be refused; keep the first of each.
                exceptions: exceptions.iter().fold(Vec::<ExceptionDto>::new(), |mut out, (offset, windows)| {
                    let date = exception_day(*offset);
                    if out.iter().all(|e| e.date != date) {
                        out.push(ExceptionDto {
                            date,
                            windows: windows.iter().map(|&(s, e)| WindowDto { start: clock(s), end: clock(e) }).collect(),
                        });
                    }
                    out
                }),
                slot_minutes: Some(i64::from(slot)),
                min_duration_minutes: Some(i64::from(slot * min_slots)),
                max_duration_minutes: Some(i64::from(slot * (min_slots + extra_slots))),
                min_notice_minutes: Some(i64::from(notice)),
                horizon_days: Some(i64::from(horizon)),
                buffer_minutes: Some(i64::from(buffer)),
            };
            let rules = AvailabilityRules::parse(&dto, TimeZone::UTC).expect("generated rules are valid");
            let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
            let from = minutes_after(midnight, from_minute);
            let mut busy: Vec<Interval> = busy.iter().map(|&(start, len, second)| {
                let start = minutes_after(from, start) + TimeDelta::seconds(second);
                Interval { start, end: minutes_after(start, len) }
            }).collect();
            busy.sort();
            // Off the slot grid now and then, to see `BadDuration` agree too.
            let duration_minutes = if bad_duration { slot * min_slots + 1 } else { slot * (min_slots + pick.min(extra_slots)) };
            Scenario {
                rules,
                busy,
                now: minutes_after(from, now_minute) + TimeDelta::seconds(now_second),
                from,
                to: minutes_after(from, length),
                duration_minutes,
                probes: probes.into_iter().map(|m| minutes_after(from, m)).collect(),
            }
        }
    }

    /// SPEC read literally: every window's grid point in [from, to), kept when the session fits
    /// its stretch, notice and horizon hold, and the buffered session misses every busy interval.
    /// The plan is taken a day wider than the range, so `bookable_starts`' margins are tested too.
    fn brute_force(s: &Scenario) -> Vec<DateTime<Utc>> {
        let rules = &s.rules;
        if !rules.allows_duration(s.duration_minutes) {
            return Vec::new();
        }
        let duration = minutes(s.duration_minutes);
        let buffer = minutes(rules.buffer_minutes());
        let step = minutes(rules.slot_minutes());
        let notice = minutes(rules.min_notice_minutes());
        let horizon = TimeDelta::days(i64::from(rules.horizon_days()));
        let plan = local_time::plan(
            rules,
            s.from - TimeDelta::days(1),
            s.to + TimeDelta::days(1),
        );
        let mut starts = BTreeSet::new();
        for window in &plan.windows {
            let stretch = plan.stretches[window.stretch];
            let mut t = window.span.start;
            while t < window.span.end {
                let keeps_clear = s
                    .busy
                    .iter()
                    .all(|b| !(b.start < t + duration + buffer && t - buffer < b.end));
                if s.from <= t
                    && t < s.to
                    && t + duration <= stretch.end
                    && t >= s.now + notice
                    && t <= s.now + horizon
                    && keeps_clear
                {
                    starts.insert(t);
                }
                t += step;
            }
        }
        starts.into_iter().collect()
    }

    /// Every window's grid point in [from, to), bookable or not.
    fn grid_points(s: &Scenario) -> Vec<DateTime<Utc>> {
        let step = minutes(s.rules.slot_minutes());
        let plan = local_time::plan(
            &s.rules,
            s.from - TimeDelta::days(1),
            s.to + TimeDelta::days(1),
        );
        let mut points = BTreeSet::new();
        for window in &plan.windows {
            let mut t = window.span.start;
            while t < window.span.end {
                if (s.from..s.to).contains(&t) {
                    points.insert(t);
                }
                t += step;
            }
        }
        points.into_iter().collect()
    }

    /// Each slot on its own: on a window's grid, inside a stretch, buffer clear, notice and
    /// horizon respected (independently of the brute force above).
    fn assert_sound(s: &Scenario, slot: &Slot) {
        let rules = &s.rules;
        let duration = minutes(s.duration_minutes);
        let buffer = minutes(rules.buffer_minutes());
        assert_eq!(slot.end, slot.start + duration);
        assert!(s.from <= slot.start && slot.start < s.to);
        let plan = local_time::plan(
            rules,
            slot.start - TimeDelta::days(1),
            slot.start + TimeDelta::days(1),
        );
        let on_grid = plan.windows.iter().any(|w| {
            let offset = slot.start - w.span.start;
            w.span.start <= slot.start
                && slot.start < w.span.end
                && offset.num_seconds() % (60 * i64::from(rules.slot_minutes())) == 0
                && offset.subsec_nanos() == 0
                && slot.end <= plan.stretches[w.stretch].end
        });
        assert!(
            on_grid,
            "{slot:?} is not on a window's grid inside its stretch"
        );
        assert!(
            plan.stretches
                .iter()
                .any(|st| st.start <= slot.start && slot.end <= st.end)
        );
        for b in &s.busy {
            assert!(
                b.end <= slot.start - buffer || slot.end + buffer <= b.start,
                "{slot:?} too close to {b:?}"
            );
        }
        assert!(slot.start >= s.now + minutes(rules.min_notice_minutes()));
        assert!(slot.start <= s.now + TimeDelta::days(i64::from(rules.horizon_days())));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn bookable_slots_match_the_brute_force_and_each_is_sound(s in scenario()) {
            let found = bookable_slots(&s.rules, &s.busy, s.now, s.from, s.to, s.duration_minutes);
            if !s.rules.allows_duration(s.duration_minutes) {
                prop_assert_eq!(found, Err(Refusal::BadDuration));
                return Ok(());
            }
            let found = found.expect("allowed duration");
            for slot in &found {
                assert_sound(&s, slot);
            }
            let starts: Vec<_> = found.iter().map(|slot| slot.start).collect();
            prop_assert_eq!(starts, brute_force(&s));
        }

        #[test]
        fn slots_at_any_time_cut_to_now_are_the_slots_at_now(s in scenario()) {
            let at_now = bookable_slots(&s.rules, &s.busy, s.now, s.from, s.to, s.duration_minutes);
            let any_time = bookable_slots_within(
                &s.rules, &s.busy, StartBounds::ANY_TIME, s.from, s.to, s.duration_minutes,
            );
            let bounds = StartBounds::at(&s.rules, s.now);
            let cut = any_time.map(|slots| {
                slots.into_iter().filter(|slot| bounds.contains(slot.start)).collect::<Vec<_>>()
            });
            prop_assert_eq!(cut, at_now);
        }

        #[test]
        fn check_start_accepts_exactly_the_bookable_starts(s in scenario()) {
            let check = |start| check_start(&s.rules, &s.busy, s.now, start, s.duration_minutes);
            let Ok(found) = bookable_slots(&s.rules, &s.busy, s.now, s.from, s.to, s.duration_minutes) else {
                for &probe in &s.probes {
                    prop_assert_eq!(check(probe), Err(Refusal::BadDuration));
                }
                return Ok(());
            };
            let available = bookable_slots(&s.rules, &[], s.now, s.from, s.to, s.duration_minutes).expect("allowed duration");
            for slot in &found {
                prop_assert_eq!(check(slot.start), Ok(*slot));
            }
            // Random minutes, plus grid points of every window whatever their fate (busy,
            // notice, horizon, not fitting), sampled evenly.
            let grid = grid_points(&s);
            let step = (grid.len() / 30).max(1);
            let probes = s.probes.iter().copied().chain(grid.into_iter().step_by(step));
            let rules = &s.rules;
            for probe in probes {
                let verdict = check(probe);
                let listed = found.iter().any(|slot| slot.start == probe);
                if (s.from..s.to).contains(&probe) {
                    prop_assert_eq!(verdict.is_ok(), listed, "{:?} at {}", verdict, probe);
                }
                match verdict {
                    Ok(_) => {}
                    Err(Refusal::InThePast) => prop_assert!(probe < s.now),
                    Err(Refusal::TooSoon) => prop_assert!(s.now <= probe && probe < s.now + minutes(rules.min_notice_minutes())),
                    Err(Refusal::TooFar) => prop_assert!(probe > s.now + TimeDelta::days(i64::from(rules.horizon_days()))),
                    Err(Refusal::SlotTaken) => if (s.from..s.to).contains(&probe) {
                        prop_assert!(available.iter().any(|slot| slot.start == probe));
                    },
                    Err(Refusal::OutsideAvailability) => if (s.from..s.to).contains(&probe) {
                        prop_assert!(!available.iter().any(|slot| slot.start == probe));
                    },
                    Err(Refusal::BadDuration) => prop_assert!(false, "duration was allowed"),
                }
            }
        }

        #[test]
        fn a_start_away_from_busy_time_is_never_taken(s in scenario()) {
            let grid = grid_points(&s);
            for probe in s.probes.iter().copied().chain(grid) {
                let verdict = check_start(&s.rules, &s.busy, s.now, probe, s.duration_minutes);
                if verdict == Err(Refusal::SlotTaken) {
                    prop_assert!(
                        near_busy(&s.rules, &s.busy, probe, s.duration_minutes),
                        "{} was taken but not near busy time {:?}", probe, s.busy
                    );
                }
            }
        }

        /// Free time is availability minus each session's own time, whatever the buffer: what
        /// a live client gets by applying `slot.booked` events to an empty schedule's snapshot.
        #[test]
        fn free_intervals_are_availability_minus_busy_time(s in scenario()) {
            let mut expected = free_intervals(&s.rules, &[], s.from, s.to);
            for b in s.busy.iter().filter(|b| b.start < b.end) {
                expected = expected
                    .into_iter()
                    .flat_map(|f| {
                        let before = (f.start < b.start.min(f.end))
                            .then(|| Interval { start: f.start, end: b.start.min(f.end) });
                        let after = (b.end.max(f.start) < f.end)
                            .then(|| Interval { start: b.end.max(f.start), end: f.end });
                        before.into_iter().chain(after)
                    })
                    .collect();
            }
            prop_assert_eq!(free_intervals(&s.rules, &s.busy, s.from, s.to), expected);
        }

        #[test]
        fn free_intervals_hold_every_slot_and_no_busy_time(s in scenario()) {
            let free = free_intervals(&s.rules, &s.busy, s.from, s.to);
            let all = stretches(&s.rules, s.from, s.to);
            for pair in free.windows(2) {
                prop_assert!(pair[0].end < pair[1].start, "not merged or not ascending: {:?}", pair);
            }
            for f in &free {
                prop_assert!(s.from <= f.start && f.start < f.end && f.end <= s.to);
                prop_assert!(all.iter().any(|st| st.start <= f.start && f.end <= st.end));
                for b in &s.busy {
                    prop_assert!(f.end <= b.start || b.end <= f.start);
                }
            }
            if let Ok(found) = bookable_slots(&s.rules, &s.busy, s.now, s.from, s.to, s.duration_minutes) {
                for slot in found {
                    let end = slot.end.min(s.to);
                    prop_assert!(free.iter().any(|f| f.start <= slot.start && end <= f.end), "{:?} not in {:?}", slot, free);
                }
            }
        }
    }
}
