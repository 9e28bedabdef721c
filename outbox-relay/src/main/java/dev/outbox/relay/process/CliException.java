package dev.outbox.relay.process;

/**
 * A failure the process reports as one line on standard error and an exit code, without a stack
 * trace: the operator can fix it from the message alone.
 */
final class CliException extends RuntimeException {
    /** Bad, missing, unknown or conflicting settings or arguments. */
    static final int USAGE = 2;

    /** PostgreSQL or Kafka did not answer at start, or the schema is not there. */
    static final int UNAVAILABLE = 3;

    private final int exitCode;

    private CliException(int exitCode, String message, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    static CliException usage(String message) {
        return new CliException(USAGE, message, null);
    }

    static CliException unavailable(String message, Throwable cause) {
        return new CliException(UNAVAILABLE, message, cause);
    }

    int exitCode() {
        return exitCode;
    }
}
