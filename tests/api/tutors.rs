//! `/tutors/*`: the public catalogue, availability rules and bookable slots.

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::days_ahead_at as on_day;
use crate::helpers::{TestApp, TestResponse, TestUser, all_day_rules, spawn_app};

/// An instant as a query parameter: `Z` rather than `+00:00`, whose `+` a URL reads as a space.
fn at(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `field` of every item of a list.
fn each(body: &Value, field: &str) -> Vec<String> {
    let items = body["items"].as_array().expect("items");
    items
        .iter()
        .map(|item| item[field].as_str().expect(field).to_owned())
        .collect()
}

fn ids(body: &Value) -> Vec<String> {
    each(body, "id")
}

fn starts(body: &Value) -> Vec<String> {
    each(body, "start")
}

/// `count` instants half an hour apart from `first`, as the API writes them.
fn half_hours(first: DateTime<Utc>, count: i32) -> Vec<String> {
    (0..count)
        .map(|i| at(first + TimeDelta::minutes(30 * i64::from(i))))
        .collect()
}

/// The same window on every weekday, wall clock in the rules' zone.
fn every_day(start: &str, end: &str) -> Value {
    let days = "monday tuesday wednesday thursday friday saturday sunday".split(' ');
    days.map(|day| json!({"weekday": day, "start": start, "end": end}))
        .collect()
}

/// `all_day_rules()` with some fields replaced.
fn all_day_with(changes: Value) -> Value {
    let mut rules = all_day_rules();
    for (key, value) in changes.as_object().expect("an object") {
        rules[key] = value.clone();
    }
    rules
}

async fn slots(app: &TestApp, tutor: Uuid, query: &str) -> TestResponse {
    let path = format!("/tutors/{tutor}/slots?{query}");
    app.get(&path, None).await
}

/// The starts of `tutor`'s `minutes`-long slots in `[from, to)`, on one page.
async fn starts_in(
    app: &TestApp,
    tutor: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    minutes: u32,
) -> Vec<String> {
    let range = format!("from={}&to={}", at(from), at(to));
    let response = slots(
        app,
        tutor,
        &format!("{range}&duration_minutes={minutes}&limit=200"),
    )
    .await;
    starts(response.assert_status(200))
}

async fn update_profile(app: &TestApp, user: &TestUser, changes: Value) {
    let path = format!("/user/{}", user.id);
    let response = app.put(&path, Some(&user.token), &changes).await;
    response.assert_status(200);
}

async fn deactivate(app: &TestApp, tutor: &TestUser) {
    let response = app.delete("/teachers/me", Some(&tutor.token)).await;
    response.assert_status(200);
}

/// The ids on one page of a list of tutors, and its next cursor.
async fn page_of(app: &TestApp, path: &str) -> (Vec<String>, Option<String>) {
    let response = app.get(path, None).await;
    let body = response.assert_status(200);
    (ids(body), body["next_cursor"].as_str().map(str::to_owned))
}

/// The ids `GET /tutors?{query}` lists on its first page.
async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    page_of(app, &format!("/tutors?{query}")).await.0
}

const MY_RULES: &str = "/tutors/me/availability";

async fn replace_rules(app: &TestApp, tutor: &TestUser, rules: &Value) -> TestResponse {
    app.put(MY_RULES, Some(&tutor.token), rules).await
}

async fn rules_of(app: &TestApp, tutor: &TestUser) -> Value {
    let path = format!("/tutors/{}/availability", tutor.id);
    app.get(&path, None).await.assert_status(200).clone()
}

#[actix_web::test]
async fn the_catalogue_and_a_tutors_page_show_active_tutors_with_profile_and_empty_rating() {
    let app = spawn_app().await;
    let kept = app.tutor().await;
    let gone = app.tutor().await;
    app.student().await;
    deactivate(&app, &gone).await;

    let listed = app.get("/tutors", None).await;
    let body = listed.assert_status(200);
    assert_eq!(ids(body), [kept.id.to_string()]);
    assert_eq!(body["next_cursor"], Value::Null);
    let tutor = &body["items"][0];
    assert_eq!(tutor["name"], "Tia Tutor");
    assert_eq!(tutor["role"], "tutor");
    assert!(tutor.get("email").is_none(), "{tutor}");
    assert_eq!(tutor["tutor"]["tag"], kept.tag.clone().expect("tag"));
    assert_eq!(tutor["tutor"]["timezone"], "America/Sao_Paulo");
    assert_eq!(tutor["tutor"]["specialization"], json!([]));
    let price = json!({"amount_cents": 12000, "currency": "BRL"});
    assert_eq!(tutor["tutor"]["price_per_hour"], price);
    let no_rating = json!({"average": null, "count": 0});
    assert_eq!(tutor["tutor"]["rating"], no_rating);

    // The tutor's own page shows the same.
    let page = app.get(&format!("/tutors/{}", kept.id), None).await;
    assert_eq!(page.assert_status(200), tutor);
}

#[actix_web::test]
async fn the_catalogue_filters_by_one_listed_subject_ignoring_case_and_by_maximum_price() {
    let app = spawn_app().await;
    let physicist = app.tutor().await;
    let chemist = app.tutor().await;
    let (phys, chem) = (physicist.id.to_string(), chemist.id.to_string());
    let (phys, chem) = (phys.as_str(), chem.as_str());
    let subjects = json!({"specialization": ["Calculus", "Physics"]});
    update_profile(&app, &physicist, subjects).await;
    let price = json!({"amount_cents": 5000, "currency": "BRL"});
    let changes = json!({"specialization": ["Chemistry"], "price_per_hour": price});
    update_profile(&app, &chemist, changes).await;

    for (query, expected) in [
        ("specialization=physics", vec![phys]),
        ("specialization=CHEMISTRY", vec![chem]),
        // A whole subject, not part of one.
        ("specialization=Phys", vec![]),
        ("specialization=Biology", vec![]),
        ("max_price_cents=12000", vec![phys, chem]),
        ("max_price_cents=11999", vec![chem]),
        ("max_price_cents=5000", vec![chem]),
        ("max_price_cents=4999", vec![]),
        ("max_price_cents=5000&specialization=physics", vec![]),
    ] {
        assert_eq!(listed(&app, query).await, expected, "{query}");
    }
}

#[actix_web::test]
async fn the_catalogue_keeps_only_tutors_with_a_free_slot_in_the_range() {
    let app = spawn_app().await;
    let idle = app.tutor().await.id.to_string();
    let open = app.tutor_with_rules(&all_day_rules()).await.id.to_string();
    let range = |from, to| format!("available_from={}&available_to={}", at(from), at(to));

    assert_eq!(listed(&app, "").await, [idle, open.clone()]);
    // The tutor without rules has no free slot.
    let soon = range(on_day(2, 10, 0), on_day(2, 12, 0));
    assert_eq!(listed(&app, &soon).await, [open]);
    // Past the 90-day horizon nobody is free.
    let late = range(on_day(95, 0, 0), on_day(96, 0, 0));
    assert_eq!(listed(&app, &late).await, Vec::<String>::new());
    // Filters combine.
    let cheap = format!("{soon}&max_price_cents=100");
    assert_eq!(listed(&app, &cheap).await, Vec::<String>::new());
}

#[actix_web::test]
async fn the_catalogue_pages_with_limit_and_next_cursor_oldest_first() {
    let app = spawn_app().await;
    let mut open = Vec::new();
    let mut everyone = Vec::new();
    for _ in 0..3 {
        let tutor = app.tutor_with_rules(&all_day_rules()).await.id.to_string();
        open.push(tutor.clone());
        everyone.push(tutor);
        // A tutor without availability after each, for the filtered walk to skip.
        everyone.push(app.tutor().await.id.to_string());
    }

    let (page, cursor) = page_of(&app, "/tutors?limit=4").await;
    assert_eq!(page, everyone[..4]);
    let next = format!("/tutors?limit=4&cursor={}", cursor.expect("a cursor"));
    let (page, cursor) = page_of(&app, &next).await;
    assert_eq!((page, cursor), (everyone[4..].to_vec(), None));

    // With an availability filter the pages hold only tutors with a free slot.
    let (from, to) = (at(on_day(3, 8, 0)), at(on_day(3, 9, 0)));
    let filtered = format!("/tutors?limit=2&available_from={from}&available_to={to}");
    let (page, cursor) = page_of(&app, &filtered).await;
    assert_eq!(page, open[..2]);
    let next = format!("{filtered}&cursor={}", cursor.expect("a cursor"));
    let (page, cursor) = page_of(&app, &next).await;
    assert_eq!((page, cursor), (open[2..].to_vec(), None));
}

#[actix_web::test]
async fn bad_catalogue_filters_are_422_problems_naming_the_field() {
    let app = spawn_app().await;
    let (from, to) = (on_day(2, 10, 0), on_day(2, 12, 0));
    let range = |from, to| format!("available_from={}&available_to={}", at(from), at(to));
    let over_a_month = from + TimeDelta::days(31) + TimeDelta::minutes(1);
    let cases = [
        ("max_price_cents=abc".to_owned(), "max_price_cents"),
        ("max_price_cents=-1".to_owned(), "max_price_cents"),
        (range(to, from), "available_to"),
        (range(from, from), "available_to"),
        (range(from, over_a_month), "available_to"),
        (format!("available_from={}", at(from)), "available_to"),
        (format!("available_to={}", at(to)), "available_from"),
        (
            format!("available_from=x&available_to={}", at(to)),
            "available_from",
        ),
        ("limit=0".to_owned(), "limit"),
        ("cursor=bogus".to_owned(), "cursor"),
        ("specialization=math%00".to_owned(), "specialization"),
    ];
    for (query, field) in cases {
        let response = app.get(&format!("/tutors?{query}"), None).await;
        response.assert_problem(422, "validation_failed");
        assert_eq!(response.error_fields(), [field], "{query}");
    }
    // Exactly 31 days is allowed.
    let month = format!("/tutors?{}", range(from, from + TimeDelta::days(31)));
    app.get(&month, None).await.assert_status(200);
}

#[actix_web::test]
async fn unknown_student_and_deactivated_ids_are_404_tutor_not_found() {
    let app = spawn_app().await;
    let student = app.student().await;
    let gone = app.tutor().await;
    deactivate(&app, &gone).await;
    let range = format!("from={}&to={}", at(on_day(2, 0, 0)), at(on_day(3, 0, 0)));
    for id in [Uuid::now_v7(), student.id, gone.id] {
        for path in [
            format!("/tutors/{id}"),
            format!("/tutors/{id}/availability"),
            format!("/tutors/{id}/slots?{range}"),
        ] {
            app.get(&path, None)
                .await
                .assert_problem(404, "tutor_not_found");
        }
    }
}

#[actix_web::test]
async fn a_deactivated_tutors_slots_are_404_right_away() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let (from, to) = (on_day(2, 9, 0), on_day(2, 10, 0));
    // The tutor's schedule is in memory before the deactivation.
    assert_eq!(
        starts_in(&app, tutor.id, (from, to), 30).await,
        half_hours(from, 2)
    );
    deactivate(&app, &tutor).await;
    let query = format!("from={}&to={}&duration_minutes=30", at(from), at(to));
    slots(&app, tutor.id, &query)
        .await
        .assert_problem(404, "tutor_not_found");
}

#[actix_web::test]
async fn a_new_tutor_has_no_weekly_windows_and_so_no_slots() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    assert_eq!(
        rules_of(&app, &tutor).await,
        json!({
            "timezone": "America/Sao_Paulo", "weekly": [], "exceptions": [],
            "slot_minutes": 30, "min_duration_minutes": 30, "max_duration_minutes": 180,
            "min_notice_minutes": 60, "horizon_days": 90, "buffer_minutes": 0,
        })
    );
    let week = (on_day(2, 0, 0), on_day(9, 0, 0));
    assert_eq!(
        starts_in(&app, tutor.id, week, 30).await,
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn replacing_availability_answers_and_stores_the_canonical_rules() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let sent = json!({
        "timezone": "Europe/Lisbon",
        "weekly": [
            {"weekday": "wednesday", "start": "14:00", "end": "24:00"},
            {"weekday": "Monday", "start": "13:00", "end": "17:00"},
            {"weekday": "monday", "start": "09:00", "end": "12:00"},
        ],
        "exceptions": [{"date": "2027-01-01", "windows": []},
                       {"date": "2026-12-26", "windows": [{"start": "14:00", "end": "18:00"}]}],
        "slot_minutes": 15, "max_duration_minutes": 90,
    });
    let canonical = json!({
        "timezone": "Europe/Lisbon",
        "weekly": [
            {"weekday": "monday", "start": "09:00", "end": "12:00"},
            {"weekday": "monday", "start": "13:00", "end": "17:00"},
            {"weekday": "wednesday", "start": "14:00", "end": "24:00"},
        ],
        "exceptions": [{"date": "2026-12-26", "windows": [{"start": "14:00", "end": "18:00"}]},
                       {"date": "2027-01-01", "windows": []}],
        "slot_minutes": 15, "min_duration_minutes": 30, "max_duration_minutes": 90,
        "min_notice_minutes": 60, "horizon_days": 90, "buffer_minutes": 0,
    });
    assert_eq!(
        replace_rules(&app, &tutor, &sent).await.assert_status(200),
        &canonical
    );
    assert_eq!(rules_of(&app, &tutor).await, canonical);
    // The rules' zone is the profile's zone.
    let profile = app.get(&format!("/tutors/{}", tutor.id), None).await;
    assert_eq!(
        profile.assert_status(200)["tutor"]["timezone"],
        "Europe/Lisbon"
    );

    // Rules without a zone keep the current one; absent fields take their defaults.
    let friday = json!({"weekly": [{"weekday": "friday", "start": "08:00", "end": "09:00"}]});
    let replaced = replace_rules(&app, &tutor, &friday).await;
    let body = replaced.assert_status(200);
    assert_eq!(body["timezone"], "Europe/Lisbon");
    assert_eq!(body["exceptions"], json!([]));
    assert_eq!(body["slot_minutes"], 30);
    assert_eq!(rules_of(&app, &tutor).await, *body);

    // And the other way round: the profile's zone is the rules' zone.
    update_profile(&app, &tutor, json!({"timezone": "Asia/Tokyo"})).await;
    let mut expected = body.clone();
    expected["timezone"] = json!("Asia/Tokyo");
    assert_eq!(rules_of(&app, &tutor).await, expected);
}

#[actix_web::test]
async fn right_after_a_profile_timezone_change_bookings_and_slots_follow_the_new_zone() {
    let app = spawn_app().await;
    let rules = all_day_with(json!({"weekly": every_day("09:00", "10:00")}));
    let tutor = app.tutor_with_rules(&rules).await;
    let student = app.student().await;
    let (day, date) = (on_day(3, 0, 0), on_day(3, 0, 0).format("%Y-%m-%d"));
    let query = format!(
        "from={}&to={}&duration_minutes=60",
        at(day),
        at(on_day(4, 0, 0))
    );
    let slot = |start: DateTime<Utc>, local: &str| {
        let end = at(start + TimeDelta::hours(1));
        json!([{"start": at(start), "end": end, "local_start": local}])
    };
    // The tutor's schedule is in memory, in UTC.
    let before = slots(&app, tutor.id, &query).await;
    let utc_slot = slot(on_day(3, 9, 0), &format!("{date}T09:00:00+00:00"));
    assert_eq!(before.assert_status(200)["items"], utc_slot);

    update_profile(&app, &tutor, json!({"timezone": "Asia/Tokyo"})).await;
    // 09:00Z is 18:00 in Tokyo: outside the window.
    app.book(&student, tutor.id, on_day(3, 9, 0), 60)
        .await
        .assert_problem(422, "outside_availability");
    // The window is 09:00 in Tokyo (UTC+9): 00:00Z of the same date.
    let after = slots(&app, tutor.id, &query).await;
    let tokyo_slot = slot(day, &format!("{date}T09:00:00+09:00"));
    assert_eq!(after.assert_status(200)["items"], tokyo_slot);
}

#[actix_web::test]
async fn invalid_rules_are_422_with_one_error_per_field() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let window = |day, start, end| json!({"weekday": day, "start": start, "end": end});
    let one = |day, start, end| json!({"weekly": [window(day, start, end)]});
    let overlapping = json!({"weekly": [
        window("monday", "09:00", "12:00"), window("tuesday", "11:00", "13:00"),
        window("monday", "11:00", "13:00"),
    ]});
    let cases = [
        (overlapping, "weekly[2].start"),
        (one("monday", "12:00", "09:00"), "weekly[0].end"),
        (one("monday", "09:00", "09:00"), "weekly[0].end"),
        (one("monday", "25:00", "12:00"), "weekly[0].start"),
        (one("monday", "09:00", "24:30"), "weekly[0].end"),
        (one("funday", "09:00", "12:00"), "weekly[0].weekday"),
        // Durations must be multiples of the (default) 30-minute slot.
        (json!({"min_duration_minutes": 45}), "min_duration_minutes"),
        (json!({"max_duration_minutes": 100}), "max_duration_minutes"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (
            json!({"exceptions": [{"date": "2026-13-01"}]}),
            "exceptions[0].date",
        ),
        (json!({"horizon_days": 731}), "horizon_days"),
    ];
    for (rules, field) in cases {
        let response = replace_rules(&app, &tutor, &rules).await;
        response.assert_problem(422, "validation_failed");
        assert_eq!(response.error_fields(), [field], "{rules}");
    }
    // Every problem is reported, and nothing was stored.
    let many = json!({"timezone": "Nowhere", "weekly": [window("someday", "9", "12:00")]});
    let response = replace_rules(&app, &tutor, &many).await;
    response.assert_problem(422, "validation_failed");
    let fields = ["timezone", "weekly[0].weekday", "weekly[0].start"];
    assert_eq!(response.error_fields(), fields);
    assert_eq!(rules_of(&app, &tutor).await, all_day_rules());
}

#[actix_web::test]
async fn replacing_availability_needs_the_token_of_an_active_tutor() {
    let app = spawn_app().await;
    let student = app.student().await;
    let tutor = app.tutor().await;
    let rules = all_day_rules();
    app.put(MY_RULES, None, &rules)
        .await
        .assert_problem(401, "missing_token");
    let as_student = app.put(MY_RULES, Some(&student.token), &rules).await;
    as_student.assert_problem(403, "forbidden");
    deactivate(&app, &tutor).await;
    let deactivated = app.put(MY_RULES, Some(&tutor.token), &rules).await;
    deactivated.assert_problem(404, "account_not_found");
}

#[actix_web::test]
async fn slots_are_in_utc_with_local_start_at_the_tutors_offset() {
    let app = spawn_app().await;
    // The helper's tutor is in America/Sao_Paulo (UTC-3 all year); the rules keep that zone.
    let mut rules = all_day_with(json!({"weekly": every_day("09:00", "12:00")}));
    rules.as_object_mut().expect("an object").remove("timezone");
    let tutor = app.tutor_with_rules(&rules).await;
    let date = on_day(3, 0, 0).format("%Y-%m-%d");
    let range = format!("from={}&to={}", at(on_day(3, 0, 0)), at(on_day(4, 0, 0)));
    let response = slots(&app, tutor.id, &format!("{range}&duration_minutes=60")).await;
    let expected: Vec<Value> = ["09:00", "09:30", "10:00", "10:30", "11:00"]
        .iter()
        .zip(0..)
        .map(|(local, i)| {
            let start = on_day(3, 12, 0) + TimeDelta::minutes(30 * i);
            let (end, local_start) = (
                start + TimeDelta::hours(1),
                format!("{date}T{local}:00-03:00"),
            );
            json!({"start": at(start), "end": at(end), "local_start": local_start})
        })
        .collect();
    assert_eq!(
        response.assert_status(200),
        &json!({"items": expected, "next_cursor": null})
    );

    // Without `duration_minutes` a slot lasts the tutor's shortest session (30 minutes here).
    let default = slots(&app, tutor.id, &range).await;
    let items = default.assert_status(200)["items"]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(items.len(), 6);
    assert_eq!(items[5]["start"], json!(at(on_day(3, 14, 30))));
    assert_eq!(items[5]["end"], json!(at(on_day(3, 15, 0))));
}

#[actix_web::test]
async fn slots_respect_the_minimum_notice_and_the_horizon() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let half_hour = TimeDelta::minutes(30);
    let floor = |t: DateTime<Utc>| t.duration_trunc(half_hour).expect("truncated");

    let before = Utc::now();
    let soon = starts_in(&app, tutor.id, (on_day(0, 0, 0), on_day(2, 0, 0)), 30).await;
    let after = Utc::now();
    // Nothing within the next hour: the first start is the first half hour after now + 60 min.
    let first = soon.first().expect("a slot");
    let candidates = [before, after].map(|now| at(floor(now + TimeDelta::hours(1)) + half_hour));
    assert!(
        candidates.contains(first),
        "first start {first}, now in [{before}, {after}]"
    );

    let before = Utc::now();
    let late = starts_in(&app, tutor.id, (on_day(89, 0, 0), on_day(91, 0, 0)), 30).await;
    let after = Utc::now();
    // Nothing after now + 90 days: the last start is the last half hour before it.
    let last = late.last().expect("a slot");
    let candidates = [before, after].map(|now| at(floor(now + TimeDelta::days(90))));
    assert!(
        candidates.contains(last),
        "last start {last}, now in [{before}, {after}]"
    );
}

#[actix_web::test]
async fn slots_follow_bookings_rules_and_cancellations_at_once_even_when_asked_often() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let morning = (on_day(2, 9, 0), on_day(2, 11, 30));
    let every_half_hour = half_hours(morning.0, 5);
    // Asked repeatedly, the actor keeps the list; each change must still show at once.
    for _ in 0..3 {
        assert_eq!(
            starts_in(&app, tutor.id, morning, 60).await,
            every_half_hour
        );
    }

    let booked = app.book(&student, tutor.id, on_day(2, 10, 0), 60).await;
    let session = booked.assert_status(201)["id"].clone();
    let around = [at(on_day(2, 9, 0)), at(on_day(2, 11, 0))];
    for _ in 0..3 {
        assert_eq!(starts_in(&app, tutor.id, morning, 60).await, around);
    }

    let rules = all_day_with(json!({"weekly": every_day("10:00", "24:00")}));
    replace_rules(&app, &tutor, &rules).await.assert_status(200);
    for _ in 0..3 {
        assert_eq!(
            starts_in(&app, tutor.id, morning, 60).await,
            [at(on_day(2, 11, 0))]
        );
    }

    let cancel = format!("/sessions/{}/cancel", session.as_str().expect("an id"));
    let cancelled = app.post(&cancel, Some(&student.token), &json!({})).await;
    assert_eq!(cancelled.assert_status(200)["status"], "cancelled");
    assert_eq!(
        starts_in(&app, tutor.id, morning, 60).await,
        half_hours(on_day(2, 10, 0), 3)
    );
}

#[actix_web::test]
async fn buffer_minutes_keep_neighbouring_starts_clear_of_a_session() {
    let app = spawn_app().await;
    let tutor = app
        .tutor_with_rules(&all_day_with(json!({"buffer_minutes": 30})))
        .await;
    let student = app.student().await;
    let booked = app.book(&student, tutor.id, on_day(2, 10, 0), 60).await;
    booked.assert_status(201);
    // The session holds [10:00, 11:00); 30 minutes either side stay free, and a gap of
    // exactly 30 minutes is fine.
    let expected: Vec<String> = [(8, 0), (8, 30), (9, 0), (11, 30), (12, 0), (12, 30)]
        .map(|(hour, minute)| at(on_day(2, hour, minute)))
        .into();
    let found = starts_in(&app, tutor.id, (on_day(2, 8, 0), on_day(2, 13, 0)), 30).await;
    assert_eq!(found, expected);
}

#[actix_web::test]
async fn an_exception_replaces_its_dates_windows_and_an_empty_one_blocks_the_day() {
    let app = spawn_app().await;
    let date = |days| on_day(days, 0, 0).format("%Y-%m-%d").to_string();
    let rules = all_day_with(json!({"exceptions": [
        {"date": date(3), "windows": []},
        {"date": date(4), "windows": [{"start": "14:00", "end": "15:00"}]},
    ]}));
    let tutor = app.tutor_with_rules(&rules).await;
    let found = starts_in(&app, tutor.id, (on_day(3, 0, 0), on_day(5, 0, 0)), 30).await;
    assert_eq!(found, [at(on_day(4, 14, 0)), at(on_day(4, 14, 30))]);
    // The day before keeps its weekly window, up to midnight.
    let found = starts_in(&app, tutor.id, (on_day(2, 23, 0), on_day(3, 1, 0)), 30).await;
    assert_eq!(found, [at(on_day(2, 23, 0)), at(on_day(2, 23, 30))]);
}

#[actix_web::test]
async fn slots_are_paginated_with_limit_and_next_cursor() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let (from, to) = (on_day(2, 9, 0), on_day(2, 12, 0));
    let range = format!("from={}&to={}&duration_minutes=30", at(from), at(to));
    let expected = half_hours(from, 6);

    let first = slots(&app, tutor.id, &format!("{range}&limit=4")).await;
    let first = first.assert_status(200);
    assert_eq!(starts(first), expected[..4]);
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let rest = slots(&app, tutor.id, &format!("{range}&limit=4&cursor={cursor}")).await;
    let rest = rest.assert_status(200);
    assert_eq!(starts(rest), expected[4..]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let too_many = slots(&app, tutor.id, &format!("{range}&limit=201")).await;
    too_many.assert_problem(422, "validation_failed");
    assert_eq!(too_many.error_fields(), ["limit"]);
}

#[actix_web::test]
async fn bad_slot_queries_are_422_problems_naming_the_field() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let (from, to) = (at(on_day(2, 9, 0)), at(on_day(2, 12, 0)));
    let too_far = at(on_day(2, 9, 0) + TimeDelta::days(31) + TimeDelta::minutes(30));
    let within = format!("from={from}&to={to}");
    let cases = [
        (format!("to={to}"), "from"),
        (format!("from={from}"), "to"),
        (format!("from={from}&to={from}"), "to"),
        (format!("from={to}&to={from}"), "to"),
        (format!("from={from}&to={too_far}"), "to"),
        (format!("from=2026-12-01T09:00:00&to={to}"), "from"),
        (format!("{within}&duration_minutes=abc"), "duration_minutes"),
        (format!("{within}&duration_minutes=2.5"), "duration_minutes"),
    ];
    for (query, field) in cases {
        let response = slots(&app, tutor.id, &query).await;
        response.assert_problem(422, "validation_failed");
        assert_eq!(response.error_fields(), [field], "{query}");
    }
    // Durations the tutor's rules do not allow: not a multiple of 30, over 180 minutes, none,
    // more than a day, or below zero.
    for minutes in [45, 210, 0, 2000, -30] {
        let query = format!("{within}&duration_minutes={minutes}");
        let response = slots(&app, tutor.id, &query).await;
        response.assert_problem(422, "bad_duration");
        assert_eq!(response.error_fields(), ["duration_minutes"], "{minutes}");
    }
}

/// The US springs forward on Sunday 2027-03-14: 02:00 EST becomes 03:00 EDT. The dates are
/// fixed, so this test needs them to lie within the 730-day horizon of today.
#[actix_web::test]
async fn a_window_across_the_spring_forward_gap_lasts_two_real_hours() {
    let app = spawn_app().await;
    let rules = json!({
        "timezone": "America/New_York",
        "weekly": [{"weekday": "sunday", "start": "01:00", "end": "04:00"}],
        "slot_minutes": 30, "min_duration_minutes": 30, "max_duration_minutes": 180,
        "min_notice_minutes": 0, "horizon_days": 730,
    });
    let tutor = app.tutor_with_rules(&rules).await;
    let slot = |start: &str, end: &str, local: &str| {
        json!({"start": format!("2027-03-{start}:00Z"), "end": format!("2027-03-{end}:00Z"),
               "local_start": format!("2027-03-{local}")})
    };
    let day = "from=2027-03-14T00:00:00Z&to=2027-03-15T00:00:00Z";
    // 01:00 EST is 06:00Z; 02:00–03:00 does not exist; 04:00 EDT is 08:00Z.
    let response = slots(&app, tutor.id, &format!("{day}&duration_minutes=30")).await;
    let expected = json!([
        slot("14T06:00", "14T06:30", "14T01:00:00-05:00"),
        slot("14T06:30", "14T07:00", "14T01:30:00-05:00"),
        slot("14T07:00", "14T07:30", "14T03:00:00-04:00"),
        slot("14T07:30", "14T08:00", "14T03:30:00-04:00"),
    ]);
    assert_eq!(response.assert_status(200)["items"], expected);
    let two_hours = slots(&app, tutor.id, &format!("{day}&duration_minutes=120")).await;
    assert_eq!(
        starts(two_hours.assert_status(200)),
        ["2027-03-14T06:00:00Z"]
    );
    let longer = slots(&app, tutor.id, &format!("{day}&duration_minutes=150")).await;
    assert_eq!(starts(longer.assert_status(200)), Vec::<String>::new());

    // The Sunday before, the same window is three hours of EST: 06:00Z to 09:00Z.
    let week_before = "from=2027-03-07T00:00:00Z&to=2027-03-08T00:00:00Z&duration_minutes=180";
    let response = slots(&app, tutor.id, week_before).await;
    let expected = json!([slot("07T06:00", "07T09:00", "07T01:00:00-05:00")]);
    assert_eq!(response.assert_status(200)["items"], expected);
}

#[actix_web::test]
async fn word_of_an_older_zone_change_arriving_late_leaves_newer_rules_in_place() {
    use tutoring::domain::TimeZone;
    use tutoring::scheduling::{Changed, QuerySlots};

    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let mut newer = all_day_rules();
    newer["timezone"] = json!("Asia/Tokyo");
    app.put("/tutors/me/availability", Some(&tutor.token), &newer)
        .await
        .assert_status(200);
    let seq: i64 = sqlx::query_scalar("SELECT event_seq FROM tutors WHERE user_id = $1")
        .bind(tutor.id)
        .fetch_one(&app.db)
        .await
        .expect("the tutor's sequence");

    // A profile change committed before the rules' replacement, told to the actor after it.
    let older = Changed::Timezone {
        zone: TimeZone::parse("America/Sao_Paulo").expect("a zone"),
        seq: seq - 1,
    };
    app.registry.tell_if_running(tutor.id, older).await;
    // The actor's mailbox is in order: this answer comes after it handled the late word.
    let query = QuerySlots {
        from: on_day(3, 0, 0),
        to: on_day(4, 0, 0),
        duration_minutes: Some(60),
    };
    let answer = app
        .registry
        .ask(tutor.id, query)
        .await
        .expect("the actor answers")
        .expect("slots");
    assert_eq!(answer.list.timezone.name(), "Asia/Tokyo");
}
