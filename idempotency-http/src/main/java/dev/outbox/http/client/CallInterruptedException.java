package dev.outbox.http.client;

/**
 * The thread was interrupted while an operation was being sent or while it waited to retry; no
 * further attempt is made. (Or while the client read the request body before the first attempt:
 * then nothing was sent, and {@link #attempts()} is 0.) The attempts already sent may have reached
 * the server and run there, so a caller that retries the operation later sends it with {@link
 * #idempotencyKey()}, also a key the client minted: a target that honours the key answers with the
 * first outcome rather than run it twice. A target that does not honour it may run it again. As for any {@link
 * InterruptedException}, the thread's interrupt status is cleared: restore it if the thread must
 * stop.
 */
public class CallInterruptedException extends InterruptedException {
    private static final long serialVersionUID = 1L;

    private final int attempts;
    private final String idempotencyKey;

    /**
     * @param message what was interrupted and what to do
     * @param attempts requests sent, the interrupted one included
     * @param idempotencyKey the operation's key, or null
     */
    public CallInterruptedException(String message, int attempts, String idempotencyKey) {
        super(message);
        this.attempts = attempts;
        this.idempotencyKey = idempotencyKey;
    }

    /**
     * @return requests sent, the interrupted one included: at least 1, except 0 when the client was
     *     reading the request body before the first attempt
     */
    public int attempts() {
        return attempts;
    }

    /** @return the operation's key, or null when its requests carried none; retry with it */
    public String idempotencyKey() {
        return idempotencyKey;
    }
}
