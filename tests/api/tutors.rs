//! `/tutors/*`: the public catalogue, availability rules and bookable slots.

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestResponse, TestUser, all_day_rules, days_ahead_at, spawn_app};

/// An instant as a query parameter: `Z` rather than `+00:00`, whose `+` a URL reads as a space.
fn at(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

fn starts(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|slot| slot["start"].as_str().expect("start").to_owned())
        .collect()
}

/// Every weekday from `start` to `end`, wall clock in the rules' zone.
fn every_day(start: &str, end: &str) -> Vec<Value> {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|day| json!({"weekday": day, "start": start, "end": end}))
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
    app.get(&format!("/tutors/{tutor}/slots?{query}"), None)
        .await
}

/// The starts of `tutor`'s `minutes`-long slots in `[from, to)`.
async fn starts_between(
    app: &TestApp,
    tutor: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    minutes: u32,
) -> Vec<String> {
    let query = format!("from={}&to={}&duration_minutes={minutes}", at(from), at(to));
    starts(slots(app, tutor, &query).await.assert_status(200))
}

async fn update_profile(app: &TestApp, user: &TestUser, changes: Value) {
    app.put(&format!("/user/{}", user.id), Some(&user.token), &changes)
        .await
        .assert_status(200);
}

async fn deactivate(app: &TestApp, tutor: &TestUser) {
    app.delete("/teachers/me", Some(&tutor.token))
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn the_catalogue_lists_only_active_tutors_with_their_profile_and_an_empty_rating() {
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
    assert_eq!(
        tutor["tutor"]["price_per_hour"],
        json!({"amount_cents": 12000, "currency": "BRL"})
    );
    assert_eq!(
        tutor["tutor"]["rating"],
        json!({"average": null, "count": 0})
    );
}

#[actix_web::test]
async fn the_catalogue_filters_by_one_listed_subject_ignoring_case() {
    let app = spawn_app().await;
    let physicist = app.tutor().await;
    let chemist = app.tutor().await;
    update_profile(
        &app,
        &physicist,
        json!({"specialization": ["Calculus", "Physics"]}),
    )
    .await;
    update_profile(&app, &chemist, json!({"specialization": ["Chemistry"]})).await;

    for (query, expected) in [
        ("physics", vec![physicist.id.to_string()]),
        ("CHEMISTRY", vec![chemist.id.to_string()]),
        // A whole subject, not a substring of one.
        ("Phys", vec![]),
        ("Biology", vec![]),
    ] {
        let listed = app
            .get(&format!("/tutors?specialization={query}"), None)
            .await;
        assert_eq!(ids(listed.assert_status(200)), expected, "{query}");
    }
}

#[actix_web::test]
async fn the_catalogue_filters_by_maximum_hourly_price() {
    let app = spawn_app().await;
    let dear = app.tutor().await;
    let cheap = app.tutor().await;
    update_profile(
        &app,
        &cheap,
        json!({"price_per_hour": {"amount_cents": 5000, "currency": "BRL"}}),
    )
    .await;

    for (max, expected) in [
        (12000, vec![dear.id.to_string(), cheap.id.to_string()]),
        (11999, vec![cheap.id.to_string()]),
        (5000, vec![cheap.id.to_string()]),
        (4999, vec![]),
    ] {
        let listed = app
            .get(&format!("/tutors?max_price_cents={max}"), None)
            .await;
        assert_eq!(ids(listed.assert_status(200)), expected, "{max}");
    }
}

#[actix_web::test]
async fn the_catalogue_keeps_only_tutors_with_a_free_slot_in_the_range() {
    let app = spawn_app().await;
    let idle = app.tutor().await;
    let open = app.tutor_with_rules(&all_day_rules()).await;
    assert_ne!(idle.id, open.id);
    let query = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "/tutors?available_from={}&available_to={}",
            at(from),
            at(to)
        )
    };

    let soon = app
        .get(
            &query(days_ahead_at(2, 10, 0), days_ahead_at(2, 12, 0)),
            None,
        )
        .await;
    assert_eq!(ids(soon.assert_status(200)), [open.id.to_string()]);
    // Past the 90-day horizon nobody is free.
    let late = app
        .get(
            &query(days_ahead_at(95, 0, 0), days_ahead_at(96, 0, 0)),
            None,
        )
        .await;
    assert_eq!(ids(late.assert_status(200)), Vec::<String>::new());
    // Filters combine.
    let combined = app
        .get(
            &format!(
                "{}&max_price_cents=100",
                query(days_ahead_at(2, 10, 0), days_ahead_at(2, 12, 0))
            ),
            None,
        )
        .await;
    assert_eq!(ids(combined.assert_status(200)), Vec::<String>::new());
}

#[actix_web::test]
async fn the_catalogue_pages_with_limit_and_next_cursor_oldest_first() {
    let app = spawn_app().await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.tutor_with_rules(&all_day_rules()).await.id.to_string());
        // One tutor without availability between each, for the filtered walk to skip.
        app.tutor().await;
    }

    let first = app.get("/tutors?limit=4", None).await;
    let first = first.assert_status(200);
    assert_eq!(ids(first).len(), 4);
    assert_eq!(ids(first)[0], open[0]);
    assert_eq!(ids(first)[2], open[1]);
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let rest = app
        .get(&format!("/tutors?limit=4&cursor={cursor}"), None)
        .await;
    let rest = rest.assert_status(200);
    assert_eq!(ids(rest).len(), 2);
    assert_eq!(ids(rest)[0], open[2]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // With an availability filter the pages hold only tutors with a free slot.
    let range = format!(
        "available_from={}&available_to={}",
        at(days_ahead_at(3, 8, 0)),
        at(days_ahead_at(3, 9, 0))
    );
    let mut listed = Vec::new();
    let mut path = format!("/tutors?limit=2&{range}");
    for _ in 0..4 {
        let page = app.get(&path, None).await;
        let body = page.assert_status(200);
        assert!(ids(body).len() <= 2, "{body}");
        listed.extend(ids(body));
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/tutors?limit=2&{range}&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(listed, open);
}

#[actix_web::test]
async fn bad_catalogue_filters_are_422_problems_naming_the_field() {
    let app = spawn_app().await;
    let (from, to) = (days_ahead_at(2, 10, 0), days_ahead_at(2, 12, 0));
    let cases = [
        ("max_price_cents=abc".to_owned(), "max_price_cents"),
        ("max_price_cents=-1".to_owned(), "max_price_cents"),
        (
            format!("available_from={}&available_to={}", at(to), at(from)),
            "available_to",
        ),
        (
            format!("available_from={}&available_to={}", at(from), at(from)),
            "available_to",
        ),
        (
            format!(
                "available_from={}&available_to={}",
                at(from),
                at(from + TimeDelta::days(31) + TimeDelta::minutes(1))
            ),
            "available_to",
        ),
        (format!("available_from={}", at(from)), "available_to"),
        (format!("available_to={}", at(to)), "available_from"),
        (
            format!("available_from=tomorrow&available_to={}", at(to)),
            "available_from",
        ),
        ("limit=0".to_owned(), "limit"),
        ("cursor=bogus".to_owned(), "cursor"),
    ];
    for (query, field) in cases {
        let response = app.get(&format!("/tutors?{query}"), None).await;
        response.assert_problem(422, "validation_failed");
        assert_eq!(response.error_fields(), [field], "{query}");
    }
    // Exactly 31 days is allowed.
    let month = format!(
        "/tutors?available_from={}&available_to={}",
        at(from),
        at(from + TimeDelta::days(31))
    );
    app.get(&month, None).await.assert_status(200);
}

#[actix_web::test]
async fn a_tutor_profile_shows_its_timezone_and_rating() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let response = app.get(&format!("/tutors/{}", tutor.id), None).await;
    let body = response.assert_status(200);
    assert_eq!(body["id"], tutor.id.to_string());
    assert_eq!(body["name"], "Tia Tutor");
    assert!(body.get("email").is_none(), "{body}");
    assert_eq!(body["tutor"]["tag"], tutor.tag.clone().expect("tag"));
    assert_eq!(body["tutor"]["timezone"], "America/Sao_Paulo");
    assert_eq!(body["tutor"]["specialization"], json!([]));
    assert_eq!(
        body["tutor"]["rating"],
        json!({"average": null, "count": 0})
    );
}

#[actix_web::test]
async fn unknown_student_and_deactivated_ids_are_404_tutor_not_found() {
    let app = spawn_app().await;
    let student = app.student().await;
    let gone = app.tutor().await;
    deactivate(&app, &gone).await;
    let range = format!(
        "from={}&to={}",
        at(days_ahead_at(2, 0, 0)),
        at(days_ahead_at(3, 0, 0))
    );
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
    let (from, to) = (days_ahead_at(2, 9, 0), days_ahead_at(2, 10, 0));
    // The tutor's schedule is in memory before the deactivation.
    assert_eq!(
        starts_between(&app, tutor.id, from, to, 30).await,
        [at(from), at(from + TimeDelta::minutes(30))]
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
    let rules = app
        .get(&format!("/tutors/{}/availability", tutor.id), None)
        .await;
    assert_eq!(
        rules.assert_status(200),
        &json!({
            "timezone": "America/Sao_Paulo", "weekly": [], "exceptions": [],
            "slot_minutes": 30, "min_duration_minutes": 30, "max_duration_minutes": 180,
            "min_notice_minutes": 60, "horizon_days": 90, "buffer_minutes": 0,
        })
    );
    let starts = starts_between(
        &app,
        tutor.id,
        days_ahead_at(2, 0, 0),
        days_ahead_at(9, 0, 0),
        30,
    );
    assert_eq!(starts.await, Vec::<String>::new());
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
    let replaced = app
        .put("/tutors/me/availability", Some(&tutor.token), &sent)
        .await;
    assert_eq!(replaced.assert_status(200), &canonical);
    let stored = app
        .get(&format!("/tutors/{}/availability", tutor.id), None)
        .await;
    assert_eq!(stored.assert_status(200), &canonical);
    // The rules' zone is the profile's zone.
    let profile = app.get(&format!("/tutors/{}", tutor.id), None).await;
    assert_eq!(
        profile.assert_status(200)["tutor"]["timezone"],
        "Europe/Lisbon"
    );

    // Rules without a zone keep the current one.
    let without_zone = json!({"weekly": [{"weekday": "friday", "start": "08:00", "end": "09:00"}]});
    let replaced = app
        .put("/tutors/me/availability", Some(&tutor.token), &without_zone)
        .await;
    let body = replaced.assert_status(200);
    assert_eq!(body["timezone"], "Europe/Lisbon");
    assert_eq!(body["exceptions"], json!([]));
    assert_eq!(body["slot_minutes"], 30);
}

#[actix_web::test]
async fn changing_the_profile_timezone_changes_the_rules_and_their_slots() {
    let app = spawn_app().await;
    let rules = all_day_with(json!({"weekly": every_day("09:00", "10:00")}));
    let tutor = app.tutor_with_rules(&rules).await;
    let (day, next_day) = (days_ahead_at(3, 0, 0), days_ahead_at(4, 0, 0));
    let query = format!("from={}&to={}&duration_minutes=60", at(day), at(next_day));
    let before = slots(&app, tutor.id, &query).await;
    assert_eq!(
        before.assert_status(200)["items"],
        json!([{"start": at(days_ahead_at(3, 9, 0)), "end": at(days_ahead_at(3, 10, 0)),
                "local_start": format!("{}T09:00:00+00:00", day.format("%Y-%m-%d"))}])
    );

    update_profile(&app, &tutor, json!({"timezone": "Asia/Tokyo"})).await;
    let stored = app
        .get(&format!("/tutors/{}/availability", tutor.id), None)
        .await;
    let stored = stored.assert_status(200);
    assert_eq!(stored["timezone"], "Asia/Tokyo");
    assert_eq!(stored["weekly"], json!(every_day("09:00", "10:00")));
    // The windows are now 09:00 in Tokyo (UTC+9), the same date at 00:00Z.
    let after = slots(&app, tutor.id, &query).await;
    assert_eq!(
        after.assert_status(200)["items"],
        json!([{"start": at(day), "end": at(day + TimeDelta::hours(1)),
                "local_start": format!("{}T09:00:00+09:00", day.format("%Y-%m-%d"))}])
    );
}

#[actix_web::test]
async fn invalid_rules_are_422_with_one_error_per_field() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let window =
        |day: &str, start: &str, end: &str| json!({"weekday": day, "start": start, "end": end});
    let cases = [
        (
            json!({"weekly": [window("monday", "09:00", "12:00"), window("monday", "11:00", "13:00")]}),
            "weekly[1].start",
        ),
        (
            json!({"weekly": [window("monday", "12:00", "09:00")]}),
            "weekly[0].end",
        ),
        (
            json!({"weekly": [window("monday", "09:00", "09:00")]}),
            "weekly[0].end",
        ),
        (
            json!({"weekly": [window("funday", "09:00", "12:00")]}),
            "weekly[0].weekday",
        ),
        (
            json!({"weekly": [window("monday", "25:00", "26:00")]}),
            "weekly[0].start",
        ),
        (
            json!({"weekly": [window("monday", "09:00", "24:30")]}),
            "weekly[0].end",
        ),
        (
            json!({"slot_minutes": 30, "min_duration_minutes": 45}),
            "min_duration_minutes",
        ),
        (
            json!({"slot_minutes": 30, "max_duration_minutes": 100}),
            "max_duration_minutes",
        ),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (
            json!({"exceptions": [{"date": "2026-13-01", "windows": []}]}),
            "exceptions[0].date",
        ),
        (json!({"horizon_days": 731}), "horizon_days"),
    ];
    for (rules, field) in cases {
        let response = app
            .put("/tutors/me/availability", Some(&tutor.token), &rules)
            .await;
        response.assert_problem(422, "validation_failed");
        assert_eq!(response.error_fields(), [field], "{rules}");
    }
    // Every problem is reported, and nothing was stored.
    let many = json!({"timezone": "Nowhere", "weekly": [window("someday", "9", "12:00")]});
    let response = app
        .put("/tutors/me/availability", Some(&tutor.token), &many)
        .await;
    response.assert_problem(422, "validation_failed");
    assert_eq!(
        response.error_fields(),
        ["timezone", "weekly[0].weekday", "weekly[0].start"]
    );
    let stored = app
        .get(&format!("/tutors/{}/availability", tutor.id), None)
        .await;
    assert_eq!(stored.assert_status(200), &all_day_rules());
}

#[actix_web::test]
async fn replacing_availability_needs_the_token_of_an_active_tutor() {
    let app = spawn_app().await;
    let student = app.student().await;
    let tutor = app.tutor().await;
    let rules = all_day_rules();
    app.put("/tutors/me/availability", None, &rules)
        .await
        .assert_problem(401, "missing_token");
    app.put("/tutors/me/availability", Some("not-a-jwt"), &rules)
        .await
        .assert_status(401);
    app.put("/tutors/me/availability", Some(&student.token), &rules)
        .await
        .assert_problem(403, "forbidden");
    deactivate(&app, &tutor).await;
    app.put("/tutors/me/availability", Some(&tutor.token), &rules)
        .await
        .assert_problem(404, "account_not_found");
}

#[actix_web::test]
async fn slots_are_in_utc_with_local_start_at_the_tutors_offset() {
    let app = spawn_app().await;
    // The helper's tutor is in America/Sao_Paulo (UTC-3 all year).
    let mut rules = all_day_with(json!({"weekly": every_day("09:00", "12:00")}));
    rules.as_object_mut().expect("object").remove("timezone");
    let tutor = app.tutor_with_rules(&rules).await;
    let (day, next_day) = (days_ahead_at(3, 0, 0), days_ahead_at(4, 0, 0));
    let date = day.format("%Y-%m-%d");
    let query = format!("from={}&to={}&duration_minutes=60", at(day), at(next_day));
    let response = slots(&app, tutor.id, &query).await;
    let expected: Vec<Value> = [
        (12, 0, "09:00"),
        (12, 30, "09:30"),
        (13, 0, "10:00"),
        (13, 30, "10:30"),
        (14, 0, "11:00"),
    ]
    .iter()
    .map(|&(hour, minute, local)| {
        let start = days_ahead_at(3, hour, minute);
        json!({"start": at(start), "end": at(start + TimeDelta::hours(1)),
                   "local_start": format!("{date}T{local}:00-03:00")})
    })
    .collect();
    assert_eq!(
        response.assert_status(200),
        &json!({"items": expected, "next_cursor": null})
    );

    // Without `duration_minutes` a slot lasts an hour.
    let default = slots(
        &app,
        tutor.id,
        &format!("from={}&to={}", at(day), at(next_day)),
    )
    .await;
    assert_eq!(default.assert_status(200)["items"], json!(expected));
}

#[actix_web::test]
async fn slots_respect_the_minimum_notice_and_the_horizon() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let half_hour = TimeDelta::minutes(30);
    let ceil = |t: DateTime<Utc>| at(t.duration_trunc(half_hour).expect("trunc") + half_hour);
    let floor = |t: DateTime<Utc>| at(t.duration_trunc(half_hour).expect("trunc"));

    let before = Utc::now();
    let soon = starts_between(
        &app,
        tutor.id,
        days_ahead_at(0, 0, 0),
        days_ahead_at(2, 0, 0),
        30,
    )
    .await;
    let after = Utc::now();
    // Nothing within the next hour: the first start is the first half hour after now + 60 min.
    let first = soon.first().expect("a slot");
    assert!(
        [
            ceil(before + TimeDelta::hours(1)),
            ceil(after + TimeDelta::hours(1))
        ]
        .contains(first),
        "first start {first} with now in [{before}, {after}]"
    );

    let before = Utc::now();
    let late = starts_between(
        &app,
        tutor.id,
        days_ahead_at(89, 0, 0),
        days_ahead_at(91, 0, 0),
        30,
    )
    .await;
    let after = Utc::now();
    // Nothing after now + 90 days: the last start is the last half hour before it.
    let last = late.last().expect("a slot");
    assert!(
        [
            floor(before + TimeDelta::days(90)),
            floor(after + TimeDelta::days(90))
        ]
        .contains(last),
        "last start {last} with now in [{before}, {after}]"
    );
}

#[actix_web::test]
async fn a_booked_session_leaves_the_slots_until_it_is_cancelled() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let (from, to) = (days_ahead_at(2, 9, 0), days_ahead_at(2, 11, 30));
    let every_half_hour: Vec<String> = (0..5)
        .map(|i| at(from + TimeDelta::minutes(30 * i)))
        .collect();
    assert_eq!(
        starts_between(&app, tutor.id, from, to, 60).await,
        every_half_hour
    );

    let booked = app
        .book(&student, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await;
    let session = booked.assert_status(201)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        starts_between(&app, tutor.id, from, to, 60).await,
        [at(days_ahead_at(2, 9, 0)), at(days_ahead_at(2, 11, 0))]
    );

    app.post(
        &format!("/sessions/{session}/cancel"),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_status(200);
    assert_eq!(
        starts_between(&app, tutor.id, from, to, 60).await,
        every_half_hour
    );
}

#[actix_web::test]
async fn buffer_minutes_keep_neighbouring_starts_clear_of_a_session() {
    let app = spawn_app().await;
    let tutor = app
        .tutor_with_rules(&all_day_with(json!({"buffer_minutes": 30})))
        .await;
    let student = app.student().await;
    app.book(&student, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await
        .assert_status(201);
    // The session holds [10:00, 11:00); 30 minutes either side stay free, and a gap of
    // exactly 30 minutes is fine.
    let expected: Vec<String> = [(8, 0), (8, 30), (9, 0), (11, 30), (12, 0), (12, 30)]
        .iter()
        .map(|&(h, m)| at(days_ahead_at(2, h, m)))
        .collect();
    let found = starts_between(
        &app,
        tutor.id,
        days_ahead_at(2, 8, 0),
        days_ahead_at(2, 13, 0),
        30,
    );
    assert_eq!(found.await, expected);
}

#[actix_web::test]
async fn an_exception_replaces_its_dates_windows_and_an_empty_one_blocks_the_day() {
    let app = spawn_app().await;
    let date = |days: i64| days_ahead_at(days, 0, 0).format("%Y-%m-%d").to_string();
    let rules = all_day_with(json!({"exceptions": [
        {"date": date(3), "windows": []},
        {"date": date(4), "windows": [{"start": "14:00", "end": "15:00"}]},
    ]}));
    let tutor = app.tutor_with_rules(&rules).await;
    let found = starts_between(
        &app,
        tutor.id,
        days_ahead_at(3, 0, 0),
        days_ahead_at(5, 0, 0),
        30,
    );
    assert_eq!(
        found.await,
        [at(days_ahead_at(4, 14, 0)), at(days_ahead_at(4, 14, 30))]
    );
    // The days around them keep their weekly windows.
    let before = starts_between(
        &app,
        tutor.id,
        days_ahead_at(2, 23, 0),
        days_ahead_at(3, 1, 0),
        30,
    );
    assert_eq!(
        before.await,
        [at(days_ahead_at(2, 23, 0)), at(days_ahead_at(2, 23, 30))]
    );
}

#[actix_web::test]
async fn slots_are_paginated_with_limit_and_next_cursor() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let range = format!(
        "from={}&to={}&duration_minutes=30",
        at(days_ahead_at(2, 9, 0)),
        at(days_ahead_at(2, 12, 0))
    );
    let first = slots(&app, tutor.id, &format!("{range}&limit=4")).await;
    let first = first.assert_status(200);
    let expected: Vec<String> = (0..6)
        .map(|i| at(days_ahead_at(2, 9, 0) + TimeDelta::minutes(30 * i)))
        .collect();
    assert_eq!(starts(first), expected[..4]);
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let rest = slots(&app, tutor.id, &format!("{range}&limit=4&cursor={cursor}")).await;
    let rest = rest.assert_status(200);
    assert_eq!(starts(rest), expected[4..]);
    assert_eq!(rest["next_cursor"], Value::Null);
    slots(&app, tutor.id, &format!("{range}&limit=201"))
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn bad_slot_queries_are_422_problems_naming_the_field() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let (from, to) = (at(days_ahead_at(2, 9, 0)), at(days_ahead_at(2, 12, 0)));
    let too_far = at(days_ahead_at(2, 9, 0) + TimeDelta::days(31) + TimeDelta::minutes(30));
    let cases = [
        (format!("to={to}"), "from"),
        (format!("from={from}"), "to"),
        (format!("from={from}&to={from}"), "to"),
        (format!("from={to}&to={from}"), "to"),
        (format!("from={from}&to={too_far}"), "to"),
        (format!("from=2026-12-01T09:00:00&to={to}"), "from"),
        (
            format!("from={from}&to={to}&duration_minutes=abc"),
            "duration_minutes",
        ),
        (
            format!("from={from}&to={to}&duration_minutes=0"),
            "duration_minutes",
        ),
    ];
    for (query, field) in cases {
        let response = slots(&app, tutor.id, &query).await;
        response.assert_problem(422, "validation_failed");
        assert_eq!(response.error_fields(), [field], "{query}");
    }
    // Durations the tutor's rules do not allow: not a multiple of 30, or over 180 minutes.
    for minutes in [45, 210] {
        let query = format!("from={from}&to={to}&duration_minutes={minutes}");
        let response = slots(&app, tutor.id, &query).await;
        response.assert_problem(422, "bad_duration");
        assert_eq!(response.error_fields(), ["duration_minutes"], "{minutes}");
    }
}

/// The US springs forward on Sunday 2027-03-14: 02:00 EST becomes 03:00 EDT. Fixed dates, so
/// this test needs today to be more than a day before them and within the 730-day horizon.
#[actix_web::test]
async fn a_window_across_the_spring_forward_gap_lasts_two_real_hours() {
    let app = spawn_app().await;
    let tutor = app
        .tutor_with_rules(&json!({
            "timezone": "America/New_York",
            "weekly": [{"weekday": "sunday", "start": "01:00", "end": "04:00"}],
            "slot_minutes": 30, "min_duration_minutes": 30, "max_duration_minutes": 180,
            "min_notice_minutes": 0, "horizon_days": 730,
        }))
        .await;
    let day = "from=2027-03-14T00:00:00Z&to=2027-03-15T00:00:00Z";
    // 01:00 EST is 06:00Z; 04:00 EDT is 08:00Z.
    let response = slots(&app, tutor.id, &format!("{day}&duration_minutes=30")).await;
    assert_eq!(
        response.assert_status(200)["items"],
        json!([
            {"start": "2027-03-14T06:00:00Z", "end": "2027-03-14T06:30:00Z",
             "local_start": "2027-03-14T01:00:00-05:00"},
            {"start": "2027-03-14T06:30:00Z", "end": "2027-03-14T07:00:00Z",
             "local_start": "2027-03-14T01:30:00-05:00"},
            {"start": "2027-03-14T07:00:00Z", "end": "2027-03-14T07:30:00Z",
             "local_start": "2027-03-14T03:00:00-04:00"},
            {"start": "2027-03-14T07:30:00Z", "end": "2027-03-14T08:00:00Z",
             "local_start": "2027-03-14T03:30:00-04:00"},
        ])
    );
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
    assert_eq!(
        response.assert_status(200)["items"],
        json!([{"start": "2027-03-07T06:00:00Z", "end": "2027-03-07T09:00:00Z",
                "local_start": "2027-03-07T01:00:00-05:00"}])
    );
}
