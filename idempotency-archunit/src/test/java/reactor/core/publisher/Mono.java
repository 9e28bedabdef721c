package reactor.core.publisher;

import java.util.function.Supplier;
import reactor.util.retry.Retry;

/**
 * Stand-in for Reactor's {@code Mono}, which is not a dependency of this module: the fixtures
 * compile against its name and the methods the rules look for, nothing more.
 *
 * @param <T> the value type
 */
public abstract class Mono<T> {
    /** @return nothing: the fixtures are read, never run */
    public static <T> Mono<T> fromSupplier(Supplier<? extends T> supplier) {
        return null;
    }

    public abstract Mono<T> retry(long times);

    public abstract Mono<T> retryWhen(Retry spec);
}
