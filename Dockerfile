# One image for every urn role: `docker run urn checker|aggregator|resolver|targets ...`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY urn ./urn
COPY checker ./checker
COPY aggregator ./aggregator
COPY resolver ./resolver
COPY sim ./sim
COPY bench ./bench
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 urn
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER urn
# HTTP (checker 7301, aggregator 7101, resolver 7201) and resolver DNS (5353 udp/tcp).
EXPOSE 7101 7201 7301 5353/udp 5353/tcp
ENTRYPOINT ["urn"]
CMD ["--help"]
