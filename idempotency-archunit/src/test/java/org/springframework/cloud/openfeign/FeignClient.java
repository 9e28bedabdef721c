package org.springframework.cloud.openfeign;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Stand-in for Spring Cloud OpenFeign's {@code @FeignClient}, which is not a dependency of this
 * module: the fixtures compile against its name, which is all the rules read.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
public @interface FeignClient {
    String value() default "";

    String url() default "";
}
