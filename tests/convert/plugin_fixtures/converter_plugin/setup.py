"""A tiny converter plugin in the guide's layout (section 3.4.1), built into a wheel by the tests."""

from setuptools import setup

package = "converter_plugin"
setup(
    name="converter_plugin",
    version="1.2.0",
    description="Test plugin: converts a 'txt' pseudo-model to upper case",
    author="eiq-lab tests",
    license="Apache-2.0",
    entry_points={"deepview_converter": ["converter = converter_plugin.__main__"]},
    packages=[package],
    package_data={package: ["assets/*"]},
    install_requires=[],
    classifiers=[],
)
