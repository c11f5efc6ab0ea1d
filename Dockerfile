# Build stage: the Maven wrapper fetches Maven and every dependency from Maven Central; gcc and
# make build the kernel library (add nvcc to the image for the CUDA build).
FROM eclipse-temurin:25-jdk AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc make && rm -rf /var/lib/apt/lists/*
# The image may run on another CPU than the one that builds it: target any AVX2 machine, not -march=native.
ARG ARCH=-march=x86-64-v3
ENV ARCH=${ARCH}
WORKDIR /src
COPY . .
RUN ./mvnw -B -ntp -DskipTests -pl launcher -am package

# Run stage: the launcher jar and its runtime classpath only.
FROM eclipse-temurin:25-jre
WORKDIR /opt/cocoon
COPY --from=build /src/launcher/target/cocoon-launcher.jar ./
COPY --from=build /src/launcher/target/lib ./lib
RUN useradd --system --home /opt/cocoon cocoon
# The gateway's default ledger (an H2 file under --data-dir); mount a volume here to keep balances.
RUN mkdir /opt/cocoon/cocoon-data && chown cocoon:cocoon /opt/cocoon/cocoon-data
VOLUME /opt/cocoon/cocoon-data
USER cocoon
EXPOSE 8080 8081
ENTRYPOINT ["java", "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-jar", "/opt/cocoon/cocoon-launcher.jar"]
CMD ["demo"]
