from glob import glob

from setuptools import find_packages
from setuptools import setup

package_name = 'wallwm_policy'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wallwm maintainers',
    maintainer_email='maintainers@wallwm.dev',
    description='WALL-WM policy runtime (ONNX Runtime) and rclpy lifecycle node',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'policy_node = wallwm_policy.nodes.policy_node:main',
        ],
    },
)
