"""The built-in calibration set for void profiles.

Short chat requests across the kinds of text users send (facts, reasoning,
code, instructions, writing). A profile needs only per-layer frequencies, so a
few thousand tokens over varied content are enough; users with a domain of
their own calibrate on it with ``vllm-void calibrate --prompts FILE``.
"""

CALIBRATION_PROMPTS: tuple[str, ...] = (
    "What is the capital of France?",
    "Explain photosynthesis in two sentences.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "What is 17 multiplied by 23? Show your steps.",
    "Give three tips for writing a good cover letter.",
    "Translate 'Good morning, how are you?' into Spanish.",
    "Summarise the plot of Romeo and Juliet in one paragraph.",
    "Write a SQL query that counts the orders per customer in a table named orders.",
    "Why is the sky blue?",
    "List the planets of the solar system in order from the sun.",
    "Write a haiku about autumn rain.",
    "What is the difference between a list and a tuple in Python?",
    "How do vaccines train the immune system?",
    "Write a JavaScript function that reverses a string.",
    "If a train travels 120 km in 1.5 hours, what is its average speed?",
    "Describe the water cycle.",
    "Give me a recipe for a simple tomato pasta.",
    "What causes inflation?",
    "Write a bash command that finds all .txt files under the current directory.",
    "Who wrote 'Pride and Prejudice', and when was it published?",
    "Explain recursion to a ten-year-old.",
    "What are the main differences between TCP and UDP?",
    "Write a short, polite email declining a meeting invitation.",
    "Is 97 a prime number? Explain.",
)
