-- The whole schema of the tutoring scheduling server.
--
-- Accounts live in one `users` table (e-mail, password hash, role, activity) because login, e-mail
-- uniqueness and deactivation are the same for both roles; what only a tutor has lives in `tutors`,
-- keyed by the user id. Composite foreign keys on (id, role) let the schema itself check that a
-- `tutor_id` points at a tutor and a `student_id` at a student.
--
-- Every invariant the schema can hold, it holds: the booking invariant (no two active sessions of one
-- tutor, nor of one student, overlap) is an exclusion constraint, so no bug in the application's fast
-- path can corrupt the data.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash   text NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role            text NOT NULL CHECK (role IN ('student', 'tutor')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deactivated_at  timestamptz,
    -- Target of the role-checking foreign keys below.
    UNIQUE (id, role)
);

-- An e-mail is unique across all accounts, compared case-insensitively.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE tutors (
    user_id              uuid PRIMARY KEY,
    role                 text NOT NULL DEFAULT 'tutor' CHECK (role = 'tutor'),
    -- Four decimal digits, unique among all tutors (active or not), never reused.
    tag                  text NOT NULL CHECK (tag ~ '^[0-9]{4}$'),
    institution          text NOT NULL DEFAULT '' CHECK (length(institution) <= 200),
    bio                  text NOT NULL DEFAULT '' CHECK (length(bio) <= 5000),
    specialization       text[] NOT NULL DEFAULT '{}' CHECK (cardinality(specialization) <= 20),
    price_cents          bigint NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
    currency             text NOT NULL DEFAULT 'BRL' CHECK (currency ~ '^[A-Z]{3}$'),
    -- IANA zone name; the availability rules share it (one value, see SPEC "Tutors").
    timezone             text NOT NULL DEFAULT 'UTC',
    -- Per-tutor event sequence for live updates: bumped in the transaction that changes the
    -- tutor's schedule, so every server process agrees on the order of a tutor's events.
    event_seq            bigint NOT NULL DEFAULT 0 CHECK (event_seq >= 0),
    -- Running totals of the tutor's reviews, kept in the transaction that inserts a review, so a
    -- catalogue page reads a rating without aggregating reviews.
    rating_count         integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    rating_sum           bigint NOT NULL DEFAULT 0,
    CHECK (rating_sum BETWEEN rating_count AND 5 * rating_count),
    CONSTRAINT tutors_tag_key UNIQUE (tag),
    FOREIGN KEY (user_id, role) REFERENCES users (id, role) ON DELETE CASCADE
);

CREATE INDEX tutors_specialization_idx ON tutors USING gin (specialization);

-- A tutor's weekly hours, date exceptions and booking limits. The lists are JSON documents
-- (validated by the application at the edge, where they are parsed into domain types); the scalar
-- limits are columns so the schema can check them.
CREATE TABLE availability_rules (
    tutor_id              uuid PRIMARY KEY REFERENCES tutors (user_id) ON DELETE CASCADE,
    weekly                jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(weekly) = 'array'),
    exceptions            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(exceptions) = 'array'),
    slot_minutes          integer NOT NULL DEFAULT 30 CHECK (slot_minutes BETWEEN 5 AND 1440),
    min_duration_minutes  integer NOT NULL DEFAULT 30,
    max_duration_minutes  integer NOT NULL DEFAULT 180,
    min_notice_minutes    integer NOT NULL DEFAULT 60 CHECK (min_notice_minutes >= 0),
    horizon_days          integer NOT NULL DEFAULT 90 CHECK (horizon_days BETWEEN 1 AND 730),
    buffer_minutes        integer NOT NULL DEFAULT 0 CHECK (buffer_minutes BETWEEN 0 AND 1440),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (min_duration_minutes >= slot_minutes),
    CHECK (max_duration_minutes >= min_duration_minutes),
    CHECK (max_duration_minutes <= 1440),
    CHECK (min_duration_minutes % slot_minutes = 0),
    CHECK (max_duration_minutes % slot_minutes = 0)
);

-- Students link to tutors through tags (many-to-many).
CREATE TABLE student_tutor_links (
    student_id    uuid NOT NULL,
    student_role  text NOT NULL DEFAULT 'student' CHECK (student_role = 'student'),
    tutor_id      uuid NOT NULL REFERENCES tutors (user_id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, tutor_id),
    FOREIGN KEY (student_id, student_role) REFERENCES users (id, role) ON DELETE CASCADE
);

CREATE INDEX student_tutor_links_tutor_idx ON student_tutor_links (tutor_id, created_at, student_id);

CREATE TABLE sessions (
    id                uuid PRIMARY KEY,
    tutor_id          uuid NOT NULL REFERENCES tutors (user_id),
    student_id        uuid NOT NULL,
    student_role      text NOT NULL DEFAULT 'student' CHECK (student_role = 'student'),
    scheduled_at      timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    duration_minutes  integer NOT NULL CHECK (duration_minutes BETWEEN 1 AND 1440),
    period            tstzrange GENERATED ALWAYS AS (tstzrange(scheduled_at, ends_at, '[)')) STORED,
    status            text NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('scheduled', 'completed', 'cancelled')),
    price_cents       bigint NOT NULL CHECK (price_cents >= 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_status    text NOT NULL DEFAULT 'unpaid'
                      CHECK (payment_status IN ('unpaid', 'paid', 'refunded')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    cancelled_at      timestamptz,
    cancelled_reason  text CHECK (length(cancelled_reason) <= 2000),
    FOREIGN KEY (student_id, student_role) REFERENCES users (id, role),
    -- Targets of the reviews' and payments' composite foreign keys.
    UNIQUE (id, tutor_id, student_id),
    UNIQUE (id, currency),
    CONSTRAINT sessions_end_matches_duration
        CHECK (ends_at = scheduled_at + make_interval(mins => duration_minutes)),
    CONSTRAINT sessions_cancelled_when_stamped
        CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    -- A session is completed only once paid (a refund may follow later).
    CONSTRAINT sessions_completed_requires_payment
        CHECK (status <> 'completed' OR payment_status IN ('paid', 'refunded')),
    -- The booking invariant, as the database's last word.
    CONSTRAINT sessions_tutor_no_overlap
        EXCLUDE USING gist (tutor_id WITH =, period WITH &&) WHERE (status <> 'cancelled'),
    CONSTRAINT sessions_student_no_overlap
        EXCLUDE USING gist (student_id WITH =, period WITH &&) WHERE (status <> 'cancelled')
);

CREATE INDEX sessions_tutor_time_idx ON sessions (tutor_id, scheduled_at DESC, id DESC);
CREATE INDEX sessions_student_time_idx ON sessions (student_id, scheduled_at DESC, id DESC);

CREATE TABLE reviews (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL,
    student_id  uuid NOT NULL,
    tutor_id    uuid NOT NULL,
    rating      smallint NOT NULL CONSTRAINT reviews_rating_range CHECK (rating BETWEEN 1 AND 5),
    comment     text CONSTRAINT reviews_comment_length CHECK (length(comment) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- One review per session.
    CONSTRAINT reviews_session_id_key UNIQUE (session_id),
    -- The review's student and tutor are the session's.
    FOREIGN KEY (session_id, tutor_id, student_id) REFERENCES sessions (id, tutor_id, student_id)
);

CREATE INDEX reviews_tutor_idx ON reviews (tutor_id, created_at DESC, id DESC);

CREATE TABLE payments (
    id               uuid PRIMARY KEY,
    session_id       uuid NOT NULL,
    provider         text NOT NULL CHECK (provider IN ('fake', 'stripe')),
    -- The provider's id for the charge (a PaymentIntent id for Stripe).
    provider_ref     text,
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    amount_cents     bigint NOT NULL CHECK (amount_cents >= 0),
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status           text NOT NULL
                     CHECK (status IN ('pending', 'requires_action', 'succeeded', 'failed', 'refunded')),
    client_secret    text,
    failure_code     text,
    refund_ref       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_ref),
    -- One charge per idempotency key, whatever happens to it.
    CONSTRAINT payments_idempotency_key UNIQUE (provider, idempotency_key),
    -- A session is charged in its own currency.
    FOREIGN KEY (session_id, currency) REFERENCES sessions (id, currency)
);

-- At most one charge of a session is in flight or has succeeded: failed charges may be retried,
-- but a session is never charged twice.
CREATE UNIQUE INDEX payments_one_live_per_session ON payments (session_id)
    WHERE status IN ('pending', 'requires_action', 'succeeded');
CREATE INDEX payments_session_idx ON payments (session_id, created_at DESC);

-- Provider webhook events already applied, so a replayed event is applied once.
CREATE TABLE webhook_events (
    provider     text NOT NULL,
    event_id     text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type   text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- Responses remembered for `Idempotency-Key` headers (24 h). A row with no response yet marks a
-- request in flight with that key; it blocks the key until `locked_until`, after which a retry
-- may take it over (the first attempt died without answering).
CREATE TABLE idempotency_keys (
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope            text NOT NULL,
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     text NOT NULL,
    response_status  smallint CHECK (response_status BETWEEN 100 AND 599),
    response_body    jsonb,
    -- The id of what the request creates, chosen before it runs: a retry that takes over an
    -- abandoned key finds the resource if the first attempt did commit it.
    resource_id      uuid,
    locked_until     timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope, idempotency_key),
    CHECK ((response_status IS NULL) = (response_body IS NULL))
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Server-side record of every issued token, so a logout revokes it on every node.
CREATE TABLE auth_sessions (
    jti         uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK (expires_at > issued_at)
);

CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id);
CREATE INDEX auth_sessions_revoked_idx ON auth_sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Failed logins per e-mail, for throttling (10 per 15 minutes). Kept by e-mail rather than user
-- so unknown e-mails are throttled the same way and the answer reveals nothing.
CREATE TABLE login_failures (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_key  text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX login_failures_email_idx ON login_failures (email_key, failed_at);
