package dev.outbox.http.server.gate;

/**
 * Thrown at start when mutating endpoints are neither covered by the {@code Idempotency-Key}
 * filter nor exempted; the message lists them and says how to cover or exempt each, in the words
 * of the gate's {@link GateReport.Advice}.
 */
public final class UncoveredEndpointsException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    private final transient GateReport report;

    UncoveredEndpointsException(GateReport report, String message) {
        super(message);
        this.report = report;
    }

    /** @return the whole report */
    public GateReport report() {
        return report;
    }
}
