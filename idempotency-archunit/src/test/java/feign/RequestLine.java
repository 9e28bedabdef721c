package feign;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Stand-in for OpenFeign's {@code @RequestLine}, which is not a dependency of this module: the
 * fixtures compile against its name and value, which is all the rules read.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface RequestLine {
    String value();
}
