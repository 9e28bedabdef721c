package reactor.core.publisher;

import java.util.function.Supplier;
import reactor.util.retry.Retry;

/**
 * Stand-in for Reactor's {@code Flux}, which is not a dependency of this module: the fixtures
 * compile against its name and the methods the rules look for, nothing more.
 *
 * @param <T> the element type
 */
public abstract class Flux<T> {
    /** @return nothing: the fixtures are read, never run */
    public static <T> Flux<T> defer(Supplier<? extends Flux<T>> supplier) {
        return null;
    }

    public abstract Flux<T> retry(long times);

    public abstract Flux<T> retryWhen(Retry spec);
}
