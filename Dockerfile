# Build stage: the Maven wrapper fetches Maven and every dependency from Maven Central.
FROM eclipse-temurin:25-jdk AS build
WORKDIR /src
COPY . .
RUN ./mvnw -B -ntp -DskipTests -pl launcher -am package

# Run stage: the launcher jar and its runtime classpath only.
FROM eclipse-temurin:25-jre
WORKDIR /opt/cocoon
COPY --from=build /src/launcher/target/cocoon-launcher.jar ./
COPY --from=build /src/launcher/target/lib ./lib
RUN useradd --system --home /opt/cocoon cocoon
USER cocoon
EXPOSE 8080
ENTRYPOINT ["java", "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-jar", "/opt/cocoon/cocoon-launcher.jar"]
CMD ["demo"]
