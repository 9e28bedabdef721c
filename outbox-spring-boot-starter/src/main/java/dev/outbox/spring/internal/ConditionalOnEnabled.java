package dev.outbox.spring.internal;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.springframework.context.annotation.Conditional;

/**
 * Matches when a boolean property ({@code outbox.relay.enabled}) is true as Spring Boot binds it
 * into {@code OutboxProperties}: {@code true}, {@code on}, {@code yes} or {@code 1} (any case) is
 * true, {@code false}, {@code off}, {@code no} or {@code 0} false, and an unset property takes the
 * default given here, the property's own. Any other value fails the start with the binder's error
 * naming the property and the value ({@link OnEnabledCondition}). Spring Boot's
 * {@code @ConditionalOnProperty(havingValue = "true")} compares the text instead: with it, {@code
 * outbox.relay.enabled=on} would bind true in the properties and create no relay.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.TYPE, ElementType.METHOD})
@Documented
@Conditional(OnEnabledCondition.class)
public @interface ConditionalOnEnabled {
    /** @return the property's full name, e.g. {@code outbox.relay.enabled} */
    String value();

    /**
     * @return the property's default, which an unset property takes: {@code true} for a feature that
     *     is on unless turned off
     */
    boolean byDefault();
}
