package reactor.util.retry;

import java.time.Duration;

/**
 * Stand-in for Reactor's {@code Retry} spec, which is not a dependency of this module: the fixtures
 * compile against its name and the methods they call, nothing more.
 */
public abstract class Retry {
    /** @return nothing: the fixtures are read, never run */
    public static Retry backoff(long maxAttempts, Duration minBackoff) {
        return null;
    }
}
