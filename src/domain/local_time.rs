//! Wall clock to real time: turns a tutor's windows on local dates into real intervals and
//! merges those into stretches of continuous availability. Split out of `slots.rs` so that file
//! is only about the booking grid.
//!
//! The DST rules (SPEC "Availability rules"): a local time in a gap maps to the first instant
//! after the gap; an ambiguous one maps to its earlier instant as a start and its later instant
//! as an end; "24:00" is the next date's midnight, resolved as an end.

use chrono::offset::MappedLocalTime;
use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc};
use chrono_tz::{GapInfo, Tz};

use super::availability::{AvailabilityRules, Window};
use super::slots::Interval;

/// Local dates examined on each side of a range: a window's real interval can lie up to about
/// a day from its local date (DST, and zones that moved across the date line), and a session
/// starting near the range's end may need a stretch that continues up to a day later.
const DATE_MARGIN: Days = Days::new(2);

/// Availability is only computed for instants in [1900-01-01, 9000-01-01): nobody books a
/// session outside it, and it keeps every date and offset calculation far from chrono's limits,
/// so no input can make one overflow or panic.
const ERA_START_SECS: i64 = -2_208_988_800;
const ERA_END_SECS: i64 = 221_845_392_000;

/// Which edge of a window a local time is, deciding how an ambiguous time resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edge {
    Start,
    End,
}

/// A window on a local date placed in real time, with the stretch it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PlacedWindow {
    pub span: Interval,
    /// Index into `Plan::stretches`.
    pub stretch: usize,
}

/// The real windows around a range and the stretches they merge into, both ascending by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Plan {
    pub windows: Vec<PlacedWindow>,
    pub stretches: Vec<Interval>,
}

/// The instants availability is computed for; anything outside is never available.
pub(super) fn era() -> Interval {
    Interval {
        start: DateTime::from_timestamp(ERA_START_SECS, 0).unwrap_or(DateTime::<Utc>::MIN_UTC),
        end: DateTime::from_timestamp(ERA_END_SECS, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

/// Every window of the local dates around [from, to) in real time, and their stretches.
/// Complete for every window that could hold a start in [from, to); stretches are followed for
/// at least a day past `to`, enough for any session (at most 1440 minutes).
pub(super) fn plan(rules: &AvailabilityRules, from: DateTime<Utc>, to: DateTime<Utc>) -> Plan {
    let era = era();
    let (from, to) = (from.max(era.start), to.min(era.end));
    if from >= to {
        return Plan::default();
    }
    let tz = rules.timezone().tz();
    let local_date = |at: DateTime<Utc>| at.with_timezone(&tz).date_naive();
    let (Some(first), Some(last)) = (
        local_date(from).checked_sub_days(DATE_MARGIN),
        local_date(to).checked_add_days(DATE_MARGIN),
    ) else {
        return Plan::default();
    };

    let mut spans = Vec::new();
    let mut date = first;
    while date <= last {
        spans.extend(
            rules
                .windows_on(date)
                .iter()
                .filter_map(|&window| real_interval(tz, date, window)),
        );
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    merge(spans)
}

/// The real interval a window covers on `date`, or `None` when it maps to nothing (a window
/// wholly inside a DST gap).
pub(super) fn real_interval(tz: Tz, date: NaiveDate, window: Window) -> Option<Interval> {
    let start = resolve(tz, at_minute(date, window.start_minute())?, Edge::Start)?;
    let end = resolve(tz, at_minute(date, window.end_minute())?, Edge::End)?;
    (start < end).then_some(Interval { start, end })
}

/// Local date-time `minute` minutes after `date`'s midnight; 1440 is the next date's midnight.
fn at_minute(date: NaiveDate, minute: u16) -> Option<NaiveDateTime> {
    let minute = u32::from(minute);
    match minute {
        1440 => Some(date.succ_opt()?.and_time(NaiveTime::MIN)),
        _ => Some(date.and_time(NaiveTime::from_hms_opt(minute / 60, minute % 60, 0)?)),
    }
}

/// The real instant a wall-clock time stands for, following SPEC's DST rules.
pub(super) fn resolve(tz: Tz, local: NaiveDateTime, edge: Edge) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(at) => Some(at.to_utc()),
        MappedLocalTime::Ambiguous(earlier, later) => Some(match edge {
            Edge::Start => earlier.to_utc().min(later.to_utc()),
            Edge::End => earlier.to_utc().max(later.to_utc()),
        }),
        // The clock jumped over `local`: the transition instant is the first one after it.
        MappedLocalTime::None => GapInfo::new(&local, &tz)?.end.map(|at| at.to_utc()),
    }
}

/// Sorts real windows by start and merges those that touch or overlap into stretches.
fn merge(mut spans: Vec<Interval>) -> Plan {
    spans.sort_unstable();
    let mut plan = Plan {
        windows: Vec::with_capacity(spans.len()),
        stretches: Vec::new(),
    };
    for span in spans {
        match plan.stretches.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => plan.stretches.push(span),
        }
        let stretch = plan.stretches.len() - 1;
        plan.windows.push(PlacedWindow { span, stretch });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TimeZone;
    use crate::domain::availability::AvailabilityRulesDto;

    fn zone(name: &str) -> Tz {
        TimeZone::parse(name).expect("known zone").tz()
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .expect("test instant")
            .to_utc()
    }

    fn local(raw: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M").expect("test local time")
    }

    fn window(start: u16, end: u16) -> Window {
        Window::new(start, end).expect("test window")
    }

    fn day(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").expect("test date")
    }

    fn interval(start: &str, end: &str) -> Interval {
        Interval {
            start: utc(start),
            end: utc(end),
        }
    }

    #[test]
    fn era_bounds_are_the_documented_dates() {
        assert_eq!(
            era(),
            interval("1900-01-01T00:00:00Z", "9000-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_time_in_the_spring_forward_gap_maps_to_the_transition() {
        let ny = zone("America/New_York");
        for edge in [Edge::Start, Edge::End] {
            assert_eq!(
                resolve(ny, local("2026-03-08 02:30"), edge),
                Some(utc("2026-03-08T07:00:00Z"))
            );
            assert_eq!(
                resolve(ny, local("2026-03-08 02:00"), edge),
                Some(utc("2026-03-08T07:00:00Z"))
            );
        }
        let london = zone("Europe/London");
        assert_eq!(
            resolve(london, local("2026-03-29 01:15"), Edge::Start),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn an_ambiguous_time_is_earlier_as_a_start_and_later_as_an_end() {
        let ny = zone("America/New_York");
        let at = local("2026-11-01 01:30");
        assert_eq!(
            resolve(ny, at, Edge::Start),
            Some(utc("2026-11-01T05:30:00Z"))
        );
        assert_eq!(
            resolve(ny, at, Edge::End),
            Some(utc("2026-11-01T06:30:00Z"))
        );
        let london = zone("Europe/London");
        let at = local("2026-10-25 01:00");
        assert_eq!(
            resolve(london, at, Edge::Start),
            Some(utc("2026-10-25T00:00:00Z"))
        );
        assert_eq!(
            resolve(london, at, Edge::End),
            Some(utc("2026-10-25T01:00:00Z"))
        );
    }

    #[test]
    fn a_new_york_window_across_the_gap_lasts_two_real_hours() {
        let span = real_interval(zone("America/New_York"), day("2026-03-08"), window(60, 240));
        assert_eq!(
            span,
            Some(interval("2026-03-08T06:00:00Z", "2026-03-08T08:00:00Z"))
        );
    }

    #[test]
    fn a_window_inside_the_gap_is_empty() {
        let ny = zone("America/New_York");
        assert_eq!(real_interval(ny, day("2026-03-08"), window(120, 170)), None);
        // Ends in the gap: the end is the transition, so 01:00–02:30 is one real hour.
        assert_eq!(
            real_interval(ny, day("2026-03-08"), window(60, 150)),
            Some(interval("2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"))
        );
    }

    #[test]
    fn a_window_across_the_fall_back_overlap_lasts_an_extra_hour() {
        let span = real_interval(zone("America/New_York"), day("2026-11-01"), window(0, 180));
        assert_eq!(
            span,
            Some(interval("2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z"))
        );
        // Wholly inside the repeated hour: from the first 01:00 to the second 01:59.
        let span = real_interval(zone("America/New_York"), day("2026-11-01"), window(60, 119));
        assert_eq!(
            span,
            Some(interval("2026-11-01T05:00:00Z", "2026-11-01T06:59:00Z"))
        );
    }

    #[test]
    fn lord_howe_shifts_by_thirty_minutes() {
        let lord_howe = zone("Australia/Lord_Howe");
        // 2026-10-04 02:00 → 02:30 (+10:30 → +11:00).
        assert_eq!(
            real_interval(lord_howe, day("2026-10-04"), window(60, 240)),
            Some(interval("2026-10-03T14:30:00Z", "2026-10-03T17:00:00Z"))
        );
        assert_eq!(
            resolve(lord_howe, local("2026-10-04 02:10"), Edge::Start),
            Some(utc("2026-10-03T15:30:00Z"))
        );
        // 2026-04-05 02:00 → 01:30 (+11:00 → +10:30): 01:30–02:00 happens twice.
        let at = local("2026-04-05 01:45");
        assert_eq!(
            resolve(lord_howe, at, Edge::Start),
            Some(utc("2026-04-04T14:45:00Z"))
        );
        assert_eq!(
            resolve(lord_howe, at, Edge::End),
            Some(utc("2026-04-04T15:15:00Z"))
        );
        assert_eq!(
            real_interval(lord_howe, day("2026-04-05"), window(60, 180)),
            Some(interval("2026-04-04T14:00:00Z", "2026-04-04T16:30:00Z"))
        );
    }

    #[test]
    fn fixed_offset_zones_map_plainly() {
        assert_eq!(
            real_interval(zone("Asia/Kolkata"), day("2026-07-01"), window(540, 600)),
            Some(interval("2026-07-01T03:30:00Z", "2026-07-01T04:30:00Z"))
        );
        assert_eq!(
            real_interval(
                zone("America/Sao_Paulo"),
                day("2026-11-01"),
                window(0, 1440)
            ),
            Some(interval("2026-11-01T03:00:00Z", "2026-11-02T03:00:00Z"))
        );
    }

    fn rules(dto: AvailabilityRulesDto) -> AvailabilityRules {
        AvailabilityRules::parse(&dto, TimeZone::UTC).expect("valid rules")
    }

    fn every_day(start: &str, end: &str, timezone: &str) -> AvailabilityRulesDto {
        use crate::domain::availability::WeeklyWindowDto;
        let days = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        AvailabilityRulesDto {
            timezone: Some(timezone.to_owned()),
            weekly: days
                .iter()
                .map(|d| WeeklyWindowDto {
                    weekday: (*d).to_owned(),
                    start: start.to_owned(),
                    end: end.to_owned(),
                })
                .collect(),
            ..AvailabilityRulesDto::default()
        }
    }

    #[test]
    fn touching_windows_across_midnight_form_one_stretch() {
        let mut dto = every_day("20:00", "24:00", "America/Sao_Paulo");
        dto.weekly
            .extend(every_day("00:00", "02:00", "America/Sao_Paulo").weekly);
        let plan = plan(
            &rules(dto),
            utc("2026-12-01T12:00:00Z"),
            utc("2026-12-02T12:00:00Z"),
        );
        assert!(
            plan.stretches
                .contains(&interval("2026-12-01T23:00:00Z", "2026-12-02T05:00:00Z"))
        );
        // Six local dates: the first morning and last evening stand alone, the rest pair up.
        assert_eq!((plan.windows.len(), plan.stretches.len()), (12, 7));
    }

    #[test]
    fn fall_back_windows_that_overlap_in_real_time_merge() {
        // 00:00–01:30 ends at the later 01:30 (06:30Z); 01:30–03:00 starts at the earlier
        // one (05:30Z): one stretch, 04:00Z–08:00Z.
        let mut dto = every_day("00:00", "01:30", "America/New_York");
        dto.weekly
            .extend(every_day("01:30", "03:00", "America/New_York").weekly);
        let plan = plan(
            &rules(dto),
            utc("2026-11-01T00:00:00Z"),
            utc("2026-11-01T12:00:00Z"),
        );
        assert!(
            plan.stretches
                .contains(&interval("2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z"))
        );
        let on_the_day: Vec<_> = plan
            .windows
            .iter()
            .filter(|w| {
                w.span.start >= utc("2026-11-01T04:00:00Z")
                    && w.span.start < utc("2026-11-01T08:00:00Z")
            })
            .collect();
        assert_eq!(on_the_day.len(), 2);
        assert_eq!(on_the_day[0].stretch, on_the_day[1].stretch);
    }

    #[test]
    fn plan_covers_two_local_dates_beyond_the_range() {
        let plan = plan(
            &rules(every_day("09:00", "10:00", "Asia/Kolkata")),
            utc("2026-07-10T12:00:00Z"),
            utc("2026-07-11T12:00:00Z"),
        );
        // Local dates 07-10 and 07-11, plus two on each side.
        assert_eq!(plan.stretches.len(), 6);
        assert_eq!(plan.stretches[0].start, utc("2026-07-08T03:30:00Z"));
        assert_eq!(plan.stretches[5].start, utc("2026-07-13T03:30:00Z"));
    }

    #[test]
    fn plan_is_empty_outside_the_era_or_for_an_empty_range() {
        let rules = rules(every_day("00:00", "24:00", "UTC"));
        assert_eq!(
            plan(
                &rules,
                DateTime::<Utc>::MIN_UTC,
                utc("1899-12-31T00:00:00Z")
            ),
            Plan::default()
        );
        assert_eq!(
            plan(
                &rules,
                utc("9100-01-01T00:00:00Z"),
                DateTime::<Utc>::MAX_UTC
            ),
            Plan::default()
        );
        assert_eq!(
            plan(
                &rules,
                utc("2026-01-02T00:00:00Z"),
                utc("2026-01-01T00:00:00Z")
            ),
            Plan::default()
        );
    }
}
