package dev.outbox.consumer;

import dev.outbox.consumer.internal.LockWaitBound;
import java.sql.SQLException;
import java.sql.SQLTransientException;
import java.util.UUID;

/**
 * {@link ProcessedMessages#claim} waited past its bound (2 s, or the session's {@code lock_timeout}
 * when shorter) for the message id's row, which another open transaction holds: it claimed the same
 * id and has neither committed nor rolled back yet. A retry later succeeds: once the holder commits
 * the claim returns {@code false}, once it rolls back {@code true}.
 *
 * <p>SQLState {@code 55P03} ({@code lock_not_available}), the server's error as its cause. A {@link
 * SQLTransientException}, so a caller that retries transient failures retries it, and Spring's
 * translation of SQLState 55P03 makes it a {@code CannotAcquireLockException}, a transient {@code
 * DataAccessException}. The caller's transaction is aborted, as by any failed statement: roll it back
 * and deliver the record again later.
 */
public final class MessageIdHeldException extends SQLTransientException {
    private static final long serialVersionUID = 1L;

    MessageIdHeldException(String schema, String consumer, UUID messageId, SQLException cause) {
        super(
                "message id " + messageId + " of consumer \"" + consumer + "\" is held by another transaction: it"
                        + " claimed the same id and has neither committed nor rolled back within the claim's bound ("
                        + LockWaitBound.TIMEOUT + ", or the session's lock_timeout if shorter). The holder is a copy"
                        + " of the message being processed elsewhere, or a consumer instance that lost the partition"
                        + " with its transaction open (its process paused or cut off; pg_stat_activity shows its"
                        + " session, idle in transaction); rarely, a lock on the whole " + schema
                        + ".processed_message table. This transaction is aborted: roll it back and retry the record"
                        + " later (once the holder commits, the claim returns false; once it rolls back, true). Cause: "
                        + cause.getMessage(),
                LockWaitBound.SQLSTATE,
                cause);
    }
}
