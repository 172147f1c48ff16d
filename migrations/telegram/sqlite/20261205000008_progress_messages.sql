-- The message that accepted an order, edited in place as the order's progress arrives: the
-- text it shows now (an identical edit is not sent) and when it was closed (replaced by the
-- result, or the order failed); a progress delivered after that is not shown.
CREATE TABLE tg_progress_messages (
    run_id     TEXT PRIMARY KEY,
    chat_id    BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    text       TEXT NOT NULL,
    closed_at  BIGINT,
    created_at BIGINT NOT NULL
);
