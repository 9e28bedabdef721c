package io.github.resilience4j.retry.annotation;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Stand-in for Resilience4j's {@code @Retry} (resilience4j-annotations, not a dependency of this
 * module): the fixtures compile against its name, which is all the rules read.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.METHOD, ElementType.TYPE})
public @interface Retry {
    String name();
}
