package dev.outbox.relay.internal;

import dev.outbox.core.internal.Breakers;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/** Defaults of the relay's builder that are computed rather than constant; shared with the process. */
public final class RelayDefaults {

    private RelayDefaults() {}

    /**
     * @param failureThreshold consecutive failed batches that open the breaker
     * @param openDuration how long it stays open before one trial batch
     * @return the breaker: a count-based window that opens when all its batches failed
     */
    public static CircuitBreakerConfig circuitBreaker(int failureThreshold, Duration openDuration) {
        return Breakers.countBased(failureThreshold, failureThreshold, 100, openDuration, 1)
                .automaticTransitionFromOpenToHalfOpenEnabled(true)
                .build();
    }

    /** @return {@code <host>-<pid>-<random hex>}, new at every call */
    public static String instanceId() {
        String host = System.getenv("HOSTNAME");
        if (host == null || host.isBlank()) {
            try {
                host = InetAddress.getLocalHost().getHostName();
            } catch (UnknownHostException e) {
                host = "relay";
            }
        }
        byte[] random = new byte[3];
        ThreadLocalRandom.current().nextBytes(random);
        return host + "-" + ProcessHandle.current().pid() + "-" + HexFormat.of().formatHex(random);
    }
}
