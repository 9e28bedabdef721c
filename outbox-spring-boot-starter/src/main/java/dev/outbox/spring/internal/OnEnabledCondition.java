package dev.outbox.spring.internal;

import java.util.Map;
import org.springframework.boot.autoconfigure.condition.ConditionMessage;
import org.springframework.boot.autoconfigure.condition.ConditionOutcome;
import org.springframework.boot.autoconfigure.condition.SpringBootCondition;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.annotation.ConditionContext;
import org.springframework.core.env.Environment;
import org.springframework.core.type.AnnotatedTypeMetadata;

/**
 * The condition of {@link ConditionalOnEnabled}: binds the property as a {@code Boolean} with
 * Spring Boot's {@link Binder}, as {@code OutboxProperties} is bound, so that the condition and the
 * properties never disagree on a value such as {@code on}, {@code yes} or {@code 1}.
 */
public final class OnEnabledCondition extends SpringBootCondition {

    @Override
    public ConditionOutcome getMatchOutcome(ConditionContext context, AnnotatedTypeMetadata metadata) {
        Map<String, Object> attributes = metadata.getAnnotationAttributes(ConditionalOnEnabled.class.getName());
        if (attributes == null) {
            throw new IllegalStateException(
                    OnEnabledCondition.class.getName() + " is meant for @" + ConditionalOnEnabled.class.getName());
        }
        String property = (String) attributes.get("value");
        boolean byDefault = (Boolean) attributes.get("byDefault");
        boolean enabled = isEnabled(context.getEnvironment(), property, byDefault);
        ConditionMessage.Builder message = ConditionMessage.forCondition(ConditionalOnEnabled.class, property);
        return enabled
                ? ConditionOutcome.match(message.because("is true"))
                : ConditionOutcome.noMatch(message.because("is false"));
    }

    /**
     * @param environment the application's environment
     * @param property a boolean property's full name
     * @param byDefault its value when it is unset
     * @return its value as the binder reads it: {@code true}, {@code on}, {@code yes} and {@code 1} are
     *     true, {@code false}, {@code off}, {@code no} and {@code 0} false, whatever their case
     * @throws org.springframework.boot.context.properties.bind.BindException naming the property, when
     *     its value is none of these
     */
    public static boolean isEnabled(Environment environment, String property, boolean byDefault) {
        return Binder.get(environment).bind(property, Boolean.class).orElse(byDefault);
    }
}
