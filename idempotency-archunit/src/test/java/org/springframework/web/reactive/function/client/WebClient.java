package org.springframework.web.reactive.function.client;

import org.springframework.http.HttpMethod;

/**
 * Stand-in for Spring WebFlux's {@code WebClient}, which is not a dependency of this module: the
 * fixtures compile against its name and the methods the rules look for, nothing more.
 */
public interface WebClient {
    RequestBodyUriSpec method(HttpMethod method);

    RequestBodyUriSpec get();

    RequestBodyUriSpec post();

    /** The spec the request methods return. */
    interface RequestBodyUriSpec {
        RequestBodyUriSpec uri(String uri);

        RequestBodyUriSpec bodyValue(Object body);
    }
}
