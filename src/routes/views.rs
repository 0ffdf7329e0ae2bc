//! The JSON shapes of accounts, as SPEC.md names their fields.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{MoneyDto, PaymentStatus, Role, SessionStatus};
use crate::store::accounts::{Account, TutorProfile};
use crate::store::links::{LinkedStudent, LinkedTutor};
use crate::store::sessions::SessionRecord;

/// `{average, count}`; `average` is `null` until the first review.
#[derive(Debug, Serialize)]
pub struct RatingView {
    pub average: Option<f64>,
    pub count: i32,
}

/// The tutor part of a user.
#[derive(Debug, Serialize)]
pub struct TutorView {
    pub tag: String,
    pub institution: String,
    pub bio: String,
    pub specialization: Vec<String>,
    pub price_per_hour: MoneyDto,
    pub timezone: String,
    pub rating: RatingView,
}

impl From<&TutorProfile> for TutorView {
    fn from(t: &TutorProfile) -> Self {
        Self {
            tag: t.tag.clone(),
            institution: t.institution.clone(),
            bio: t.bio.clone(),
            specialization: t.specialization.clone(),
            price_per_hour: MoneyDto {
                amount_cents: t.price_cents,
                currency: t.currency.clone(),
            },
            timezone: t.timezone.clone(),
            rating: RatingView {
                average: t.rating_average(),
                count: t.rating_count,
            },
        }
    }
}

/// A user: `{id, name, email, role, created_at, tutor?}`, with `email` only for the user itself.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tutor: Option<TutorView>,
}

impl UserView {
    /// The account as `viewer` may see it.
    pub fn of(account: &Account, viewer: Option<Uuid>) -> Self {
        Self {
            id: account.id,
            name: account.name.clone(),
            email: (viewer == Some(account.id)).then(|| account.email.clone()),
            role: account.role,
            created_at: account.created_at,
            tutor: account.tutor.as_ref().map(TutorView::from),
        }
    }
}

/// A teacher as the `/teachers` routes show it: the tutor fields flattened beside the user's.
#[derive(Debug, Serialize)]
pub struct TeacherView {
    pub id: Uuid,
    pub tag: String,
    pub name: String,
    pub institution: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub role: Role,
    pub bio: String,
    pub specialization: Vec<String>,
    pub price_per_hour: MoneyDto,
    pub timezone: String,
    pub rating: RatingView,
    pub created_at: DateTime<Utc>,
}

impl TeacherView {
    /// `None` when the account has no tutor profile.
    pub fn of(account: &Account, viewer: Option<Uuid>) -> Option<Self> {
        let tutor = TutorView::from(account.tutor.as_ref()?);
        Some(Self {
            id: account.id,
            tag: tutor.tag,
            name: account.name.clone(),
            institution: tutor.institution,
            email: (viewer == Some(account.id)).then(|| account.email.clone()),
            role: account.role,
            bio: tutor.bio,
            specialization: tutor.specialization,
            price_per_hour: tutor.price_per_hour,
            timezone: tutor.timezone,
            rating: tutor.rating,
            created_at: account.created_at,
        })
    }
}

/// A teacher a student is linked to.
#[derive(Debug, Serialize)]
pub struct LinkedTeacherView {
    pub id: Uuid,
    pub tag: String,
    pub name: String,
    pub institution: String,
    pub linked_at: DateTime<Utc>,
}

impl From<LinkedTutor> for LinkedTeacherView {
    fn from(t: LinkedTutor) -> Self {
        Self {
            id: t.id,
            tag: t.tag,
            name: t.name,
            institution: t.institution,
            linked_at: t.linked_at,
        }
    }
}

/// A student with the teachers they are linked to (the `/students` routes).
#[derive(Debug, Serialize)]
pub struct StudentView {
    #[serde(flatten)]
    pub user: UserView,
    pub teachers: Vec<LinkedTeacherView>,
}

/// A student as their teacher sees them.
#[derive(Debug, Serialize)]
pub struct LinkedStudentView {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub linked_at: DateTime<Utc>,
}

impl From<LinkedStudent> for LinkedStudentView {
    fn from(s: LinkedStudent) -> Self {
        Self {
            id: s.id,
            name: s.name,
            role: Role::Student,
            created_at: s.created_at,
            linked_at: s.linked_at,
        }
    }
}

/// `{"message": ...}`.
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub message: &'static str,
}

/// A session: `{id, tutor_id, student_id, scheduled_at, ends_at, duration_minutes, status, price,
/// payment_status, created_at, cancelled_reason?}`.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: Uuid,
    pub tutor_id: Uuid,
    pub student_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub duration_minutes: i32,
    pub status: SessionStatus,
    pub price: MoneyDto,
    pub payment_status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_reason: Option<String>,
}

impl From<&SessionRecord> for SessionView {
    fn from(s: &SessionRecord) -> Self {
        Self {
            id: s.id,
            tutor_id: s.tutor_id,
            student_id: s.student_id,
            scheduled_at: s.scheduled_at,
            ends_at: s.ends_at,
            duration_minutes: s.duration_minutes,
            status: s.status,
            price: MoneyDto {
                amount_cents: s.price_cents,
                currency: s.currency.clone(),
            },
            payment_status: s.payment_status,
            created_at: s.created_at,
            cancelled_reason: s.cancelled_reason.clone(),
        }
    }
}

/// A bookable slot: `start`/`end` in UTC, `local_start` with the tutor's offset.
#[derive(Debug, Serialize)]
pub struct SlotView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub local_start: String,
}
