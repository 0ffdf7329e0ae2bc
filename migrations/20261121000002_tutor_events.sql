-- Live updates: every change to a tutor's schedule takes the next number of that tutor's event
-- sequence, in the transaction that makes the change, and is announced on the `tutoring_events`
-- channel. PostgreSQL delivers notifications at commit, in commit order, to every server process
-- listening, so all of them see a tutor's events in the same order with the same numbers.
--
-- Callers change several tutors in one statement only in `tutor_id` order, so the row locks this
-- function takes on `tutors` are always taken in one order and cannot deadlock.

CREATE FUNCTION tutoring_emit(
    p_tutor_id uuid,
    p_type text,
    p_start timestamptz,
    p_end timestamptz,
    p_session_id uuid,
    p_student_id uuid
) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    next_seq bigint;
BEGIN
    UPDATE tutors SET event_seq = event_seq + 1 WHERE user_id = p_tutor_id
        RETURNING event_seq INTO next_seq;
    PERFORM pg_notify('tutoring_events', json_build_object(
        'tutor_id', p_tutor_id,
        'seq', next_seq,
        'type', p_type,
        'start', p_start,
        'end', p_end,
        'session_id', p_session_id,
        'student_id', p_student_id)::text);
    RETURN next_seq;
END;
$$;

-- A change to a session that moves no time (payment, completion): announced to its participants,
-- outside any tutor's sequence.
CREATE FUNCTION tutoring_session_updated(p_session_id uuid, p_tutor_id uuid, p_student_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_notify('tutoring_events', json_build_object(
        'tutor_id', p_tutor_id,
        'type', 'session.updated',
        'session_id', p_session_id,
        'student_id', p_student_id)::text);
    RETURN true;
END;
$$;
